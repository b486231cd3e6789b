<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Client;
use Plasm\Exception\ApiException;
use Plasm\Exception\JobFailedException;
use Plasm\Exception\TimeoutException;
use Plasm\Exception\TransportException;
use Plasm\Exception\VerificationException;
use Plasm\Manifest;
use Plasm\RetryPolicy;
use Plasm\Tests\Support\ReceiptFactory;
use Plasm\Tests\Support\ScriptedServer;
use Plasm\Transport\UnixSocketTransport;
use PHPUnit\Framework\TestCase;

/**
 * The client over real sockets and real curl, against a scripted HTTP server standing in
 * for the daemon, to reach answers a healthy daemon rarely gives (429, 503, stalls).
 *
 * @medium
 */
final class ClientTest extends TestCase
{
    private ?ScriptedServer $server = null;
    private ReceiptFactory $factory;

    protected function setUp(): void
    {
        $this->factory = new ReceiptFactory();
    }

    protected function tearDown(): void
    {
        $this->server?->stop();
    }

    public function test_submit_posts_the_manifest_json_over_the_unix_socket(): void
    {
        $client = $this->unixClient([self::json(202, ['job_id' => str_repeat('a', 32), 'status' => 'queued'])]);
        $manifest = Manifest::fromBytes(ReceiptFactory::MODULE)->withStdin('Hello, World')->runLocally();

        $job = $client->submit($manifest);

        self::assertSame(str_repeat('a', 32), $job->jobId);
        self::assertFalse($job->isFinished());
        $request = $this->server->requests()[0];
        self::assertSame(['POST', '/v1/jobs'], [$request['method'], $request['path']]);
        self::assertSame('application/json', $request['headers']['content-type']);
        self::assertSame($manifest->toArray(), json_decode($request['body'], true));
    }

    public function test_submit_uploads_a_big_module_and_big_input_files_first_and_names_them_by_hash(): void
    {
        $module = ReceiptFactory::MODULE . str_repeat("\0", Client::INLINE_MODULE_BYTES);
        $big = random_bytes(Client::INLINE_FILE_BYTES + 1);
        $client = $this->unixClient([
            self::json(200, ['sha256' => hash('sha256', $module)]),
            self::json(200, ['sha256' => hash('sha256', $big)]),
            self::json(202, ['job_id' => str_repeat('a', 32), 'status' => 'queued']),
        ]);
        $manifest = Manifest::fromBytes($module)->withInputBytes('/input/big', $big)->withInputBytes('/input/small', 'small');

        $client->submit($manifest);

        [$upload, $blob, $job] = $this->server->requests();
        self::assertSame(['POST', '/v1/modules', $module], [$upload['method'], $upload['path'], $upload['body']]);
        self::assertSame(['POST', '/v1/blobs?sha256=' . hash('sha256', $big), $big], [$blob['method'], $blob['path'], $blob['body']]);
        self::assertSame(['POST', '/v1/jobs'], [$job['method'], $job['path']]);
        $sent = json_decode($job['body'], true);
        self::assertSame(hash('sha256', $module), $sent['module_sha256']);
        self::assertArrayNotHasKey('module', $sent);
        self::assertSame([
            ['path' => '/input/big', 'sha256' => hash('sha256', $big)],
            ['path' => '/input/small', 'content' => base64_encode('small')],
        ], $sent['files']);
    }

    public function test_submit_sends_a_module_and_files_up_to_the_inline_sizes_in_the_manifest_alone(): void
    {
        $module = str_repeat("\0", Client::INLINE_MODULE_BYTES);
        $file = str_repeat('f', Client::INLINE_FILE_BYTES);
        $client = $this->unixClient([self::json(202, ['job_id' => str_repeat('a', 32), 'status' => 'queued'])]);
        $manifest = Manifest::fromBytes($module)->withInputBytes('/input/f', $file);

        $client->submit($manifest);

        [$job] = $this->server->requests();
        self::assertSame('/v1/jobs', $job['path']);
        self::assertSame($manifest->toArray(), json_decode($job['body'], true));
    }

    public function test_tcp_transport_sends_the_bearer_token(): void
    {
        $this->server = new ScriptedServer([self::json(200, ['status' => 'ok'])], 'tcp');
        $client = Client::tcp('127.0.0.1', $this->server->port(), 's3cret-token');

        self::assertTrue($client->health());
        self::assertSame('Bearer s3cret-token', $this->server->requests()[0]['headers']['authorization']);
    }

    public function test_unix_socket_transport_sends_no_authorization_header(): void
    {
        $client = $this->unixClient([self::json(200, ['status' => 'ok'])]);

        $client->health();

        self::assertArrayNotHasKey('authorization', $this->server->requests()[0]['headers']);
    }

    public function test_submit_with_wait_returns_the_finished_result(): void
    {
        $client = $this->unixClient([self::json(200, $this->factory->jobResult())]);

        $job = $client->submit(Manifest::fromBytes(ReceiptFactory::MODULE), waitSeconds: 5);

        self::assertSame('/v1/jobs?wait=5', $this->server->requests()[0]['path']);
        self::assertTrue($job->isFinished());
        self::assertSame(ReceiptFactory::STDOUT, $job->result->stdout);
    }

    public function test_run_polls_a_queued_job_until_it_finished_and_verifies_its_receipt(): void
    {
        $id = '0190a1b2c3d4e5f60718293a4b5c6d7e';
        $client = $this->unixClient([
            self::json(202, ['job_id' => $id, 'status' => 'queued']),
            self::json(200, ['job_id' => $id, 'status' => 'running']),
            self::json(200, ['job_id' => $id, 'status' => 'done', 'result' => $this->factory->jobResult()]),
        ]);

        $result = $client->run(Manifest::fromBytes(ReceiptFactory::MODULE), timeoutSeconds: 10);

        self::assertSame(ReceiptFactory::STDOUT, $result->stdout);
        self::assertSame(['POST', 'GET', 'GET'], array_column($this->server->requests(), 'method'));
        self::assertSame("/v1/jobs/$id", $this->server->requests()[2]['path']);
    }

    public function test_run_raises_job_failed_with_the_peers_tried_when_no_peer_ran_the_job(): void
    {
        $id = '0190a1b2c3d4e5f60718293a4b5c6d7f';
        $attempts = [['peer_id' => '12D3KooWPeerOne', 'result' => 'limits_exceeded'], ['peer_id' => '12D3KooWPeerTwo', 'result' => 'busy']];
        $client = $this->unixClient([self::json(200, ['job_id' => $id, 'status' => 'failed', 'error' => ['code' => 'no_executor', 'message' => 'no peer ran the job', 'attempts' => $attempts]])]);

        try {
            $client->run(Manifest::fromBytes(ReceiptFactory::MODULE)->runOnAnyPeer(excludeSelf: true), timeoutSeconds: 10);
            self::fail('expected a JobFailedException');
        } catch (JobFailedException $e) {
            self::assertSame([$id, 'failed', 'no_executor'], [$e->getJobId(), $e->getJobStatus(), $e->getErrorCode()]);
            self::assertSame($attempts, $e->getAttempts());
            self::assertSame("job $id failed (no_executor): no peer ran the job", $e->getMessage());
        }
    }

    public function test_a_failed_job_lists_its_attempts_and_leaves_out_malformed_ones(): void
    {
        $client = $this->unixClient([self::json(200, ['job_id' => 'j', 'status' => 'failed', 'error' => ['code' => 'no_executor', 'attempts' => [
            ['peer_id' => '12D3KooWPeerOne', 'result' => 'unreachable'], ['peer_id' => 7], 'junk',
        ]]])]);

        $job = $client->getJob('j');

        self::assertSame([['peer_id' => '12D3KooWPeerOne', 'result' => 'unreachable']], $job->attempts());
    }

    public function test_run_refuses_a_result_whose_stdout_differs_from_the_receipt(): void
    {
        $client = $this->unixClient([self::json(200, $this->factory->jobResult(['stdout' => base64_encode("forged\n")]))]);

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('result_mismatch');

        $client->run(Manifest::fromBytes(ReceiptFactory::MODULE), timeoutSeconds: 10);
    }

    public function test_run_refuses_a_receipt_for_another_module(): void
    {
        $client = $this->unixClient([self::json(200, $this->factory->jobResult())]);

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('hash_mismatch');

        $client->run(Manifest::fromBytes("\0asm\x01\0\0\0\0"), timeoutSeconds: 10);
    }

    public function test_run_refuses_a_result_that_claims_another_outcome_than_the_receipt(): void
    {
        $forged = $this->factory->jobResult(['outcome' => ['kind' => 'exit', 'exit_code' => 1, 'message' => null]]);
        $client = $this->unixClient([self::json(200, $forged)]);

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('result_mismatch');

        $client->run(Manifest::fromBytes(ReceiptFactory::MODULE), timeoutSeconds: 10);
    }

    public function test_run_on_a_named_peer_refuses_a_receipt_signed_by_another(): void
    {
        $client = $this->unixClient([self::json(200, $this->factory->jobResult())]);
        $asked = (new ReceiptFactory('another-seed-of-thirty-two-bytes'))->peerId();

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('executor_mismatch');

        $client->run(Manifest::fromBytes(ReceiptFactory::MODULE)->runOnPeer($asked), timeoutSeconds: 10);
    }

    public function test_run_on_a_named_peer_accepts_its_receipt(): void
    {
        $client = $this->unixClient([self::json(200, $this->factory->jobResult())]);

        $result = $client->run(Manifest::fromBytes(ReceiptFactory::MODULE)->runOnPeer($this->factory->peerId()), timeoutSeconds: 10);

        self::assertSame($this->factory->peerId(), $result->executor);
    }

    public function test_run_gives_up_when_the_job_does_not_finish_in_time(): void
    {
        $id = str_repeat('b', 32);
        $running = self::json(200, ['job_id' => $id, 'status' => 'running']);
        $client = $this->unixClient([self::json(202, ['job_id' => $id, 'status' => 'queued']), ...array_fill(0, 50, $running)]);

        $this->expectException(TimeoutException::class);
        $this->expectExceptionMessage("job $id is still running");

        $client->run(Manifest::fromBytes(ReceiptFactory::MODULE), timeoutSeconds: 0.5);
    }

    public function test_retries_429_and_503_until_the_node_accepts(): void
    {
        $client = $this->unixClient([
            self::error(429, 'rate_limited'),
            self::error(503, 'busy'),
            self::json(200, ['status' => 'ok']),
        ], new RetryPolicy(4, 0.01, 0.02));

        self::assertTrue($client->health());
        self::assertCount(3, $this->server->requests());
    }

    public function test_gives_up_after_the_last_attempt_with_the_nodes_error_code(): void
    {
        $client = $this->unixClient(array_fill(0, 5, self::error(503, 'busy')), new RetryPolicy(3, 0.01, 0.02));

        try {
            $client->health();
            self::fail('expected an ApiException');
        } catch (ApiException $e) {
            self::assertSame('busy', $e->getErrorCode());
            self::assertSame(503, $e->getHttpStatus());
        }
        self::assertCount(3, $this->server->requests());
    }

    public function test_does_not_retry_a_bad_request(): void
    {
        $client = $this->unixClient([self::error(400, 'invalid_manifest'), self::json(200, [])]);

        try {
            $client->submit(Manifest::fromBytes(ReceiptFactory::MODULE));
            self::fail('expected an ApiException');
        } catch (ApiException $e) {
            self::assertSame('invalid_manifest', $e->getErrorCode());
            self::assertSame(400, $e->getHttpStatus());
        }
        self::assertCount(1, $this->server->requests());
    }

    public function test_an_error_without_a_json_body_still_raises_an_api_exception(): void
    {
        $client = $this->unixClient([['status' => 500, 'body' => 'internal error']]);

        $this->expectException(ApiException::class);
        $this->expectExceptionMessage('http_500');

        $client->health();
    }

    public function test_a_node_that_does_not_answer_in_time_raises_a_timeout(): void
    {
        $this->server = new ScriptedServer([['status' => 200, 'body' => '{"status":"ok"}', 'delay_ms' => 3000]]);
        $client = new Client(new UnixSocketTransport($this->server->socketPath(), timeoutSeconds: 0.3));

        $this->expectException(TimeoutException::class);

        $client->health();
    }

    public function test_a_missing_socket_raises_a_transport_exception_naming_it(): void
    {
        $socket = sys_get_temp_dir() . '/plasm-no-such-' . bin2hex(random_bytes(4)) . '.sock';
        $client = Client::unix($socket);

        try {
            $client->health();
            self::fail('no exception');
        } catch (TransportException $e) {
            self::assertStringContainsString('cannot reach plasmd at unix socket ' . $socket, $e->getMessage());
            self::assertStringContainsString('there is no such socket file', $e->getMessage());
            self::assertStringNotContainsString('localhost port 80', $e->getMessage());
        }
    }

    public function test_peers_are_empty_when_the_node_has_no_peers_route(): void
    {
        $client = $this->unixClient([self::error(404, 'not_found')]);

        self::assertSame([], $client->peers());
    }

    public function test_peers_lists_what_the_node_knows(): void
    {
        $client = $this->unixClient([self::json(200, ['peers' => [['peer_id' => $this->factory->peerId()]]])]);

        self::assertSame([['peer_id' => $this->factory->peerId()]], $client->peers());
    }

    public function test_upload_module_posts_wasm_bytes_and_returns_their_hash(): void
    {
        $sha = hash('sha256', ReceiptFactory::MODULE);
        $client = $this->unixClient([self::json(200, ['sha256' => $sha])]);

        self::assertSame($sha, $client->uploadModule(ReceiptFactory::MODULE));
        $request = $this->server->requests()[0];
        self::assertSame('application/wasm', $request['headers']['content-type']);
        self::assertSame(ReceiptFactory::MODULE, $request['body']);
    }

    public function test_upload_module_refuses_a_hash_that_is_not_of_the_bytes_sent(): void
    {
        $client = $this->unixClient([self::json(200, ['sha256' => str_repeat('0', 64)])]);

        $this->expectExceptionMessage('not the hash of the bytes sent');

        $client->uploadModule(ReceiptFactory::MODULE);
    }

    public function test_list_jobs_passes_the_filters_as_query_parameters(): void
    {
        $client = $this->unixClient([self::json(200, ['jobs' => [['job_id' => str_repeat('c', 32), 'status' => 'done']]])]);

        $jobs = $client->listJobs(status: 'done', limit: 5);

        self::assertSame('/v1/jobs?status=done&limit=5', $this->server->requests()[0]['path']);
        self::assertSame(str_repeat('c', 32), $jobs[0]['job_id']);
    }

    public function test_cancel_deletes_the_job(): void
    {
        $id = str_repeat('d', 32);
        $client = $this->unixClient([self::json(200, ['job_id' => $id, 'status' => 'cancelled'])]);

        $job = $client->cancel($id);

        self::assertSame('cancelled', $job->status);
        self::assertSame(['DELETE', "/v1/jobs/$id"], [$this->server->requests()[0]['method'], $this->server->requests()[0]['path']]);
    }

    public function test_verify_sends_the_cose_bytes_as_base64(): void
    {
        $client = $this->unixClient([self::json(200, ['valid' => true, 'reason' => null, 'message' => 'signed by the executor', 'receipt' => []])]);
        $cose = $this->factory->cose();

        $verdict = $client->verify($cose);

        self::assertTrue($verdict['valid']);
        self::assertSame('signed by the executor', $verdict['message']);
        self::assertSame(['cose' => base64_encode($cose)], json_decode($this->server->requests()[0]['body'], true));
    }

    /** @param list<array<string, mixed>> $responses */
    private function unixClient(array $responses, ?RetryPolicy $retry = null): Client
    {
        $this->server = new ScriptedServer($responses);
        return Client::unix($this->server->socketPath(), 10.0, $retry ?? new RetryPolicy(4, 0.01, 0.05));
    }

    /** @param array<string, mixed> $data */
    private static function json(int $status, array $data): array
    {
        return ['status' => $status, 'body' => json_encode($data)];
    }

    private static function error(int $status, string $code): array
    {
        return self::json($status, ['error' => ['code' => $code, 'message' => "scripted $code"]]);
    }
}
