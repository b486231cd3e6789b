<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Exception\ApiException;
use Plasm\Exception\VerificationException;
use Plasm\Identity\PeerId;
use Plasm\Manifest;
use Plasm\Receipt;
use Plasm\Tests\Support\Daemon;

/**
 * The SDK against a real daemon over its Unix socket and its loopback TCP port.
 *
 * @large
 */
final class DaemonClientTest extends DaemonTestCase
{
    public function test_health_is_ok_over_the_unix_socket(): void
    {
        self::assertTrue($this->client()->health());
    }

    public function test_node_info_names_the_peer_id_of_its_public_key(): void
    {
        $node = $this->client()->nodeInfo();

        self::assertSame($node['peer_id'], PeerId::fromPublicKey(hex2bin($node['public_key'])));
    }

    public function test_hello_runs_on_the_node_and_its_receipt_verifies(): void
    {
        $client = $this->client();
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('Hello, World')->runLocally();

        $job = $client->submit($manifest, waitSeconds: 30);

        self::assertTrue($job->isFinished());
        self::assertSame("dlroW ,olleH\n", $job->result->stdout);
        $receipt = $job->result->verifyReceipt($manifest);
        self::assertSame($client->nodeInfo()['peer_id'], $receipt->executor);
        self::assertSame('ok', $receipt->outcome);
    }

    public function test_run_returns_a_verified_result(): void
    {
        $result = $this->client()->run(Manifest::fromFile(Daemon::helloWasm())->withStdin('abc'), timeoutSeconds: 30);

        self::assertSame("cba\n", $result->stdout);
    }

    public function test_a_real_receipt_fails_verification_against_other_output(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('Hello, World');
        $result = $this->client()->run($manifest, timeoutSeconds: 30);

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('hash_mismatch');

        Receipt::verify($result->receiptEnvelope(), moduleSha256: $manifest->moduleSha256(), stdout: "Hello, World\n");
    }

    public function test_a_real_receipt_with_one_byte_changed_fails_verification(): void
    {
        $result = $this->client()->run(Manifest::fromFile(Daemon::helloWasm())->withStdin('x'), timeoutSeconds: 30);
        $envelope = $result->receiptEnvelope();
        $envelope[intdiv(strlen($envelope), 2)] = chr(ord($envelope[intdiv(strlen($envelope), 2)]) ^ 0x01);

        $this->expectException(VerificationException::class);

        Receipt::verify($envelope);
    }

    public function test_the_exit_code_of_a_guest_is_reported_and_signed(): void
    {
        $manifest = Manifest::fromFile(Daemon::exampleWasm('exit3'));

        $result = $this->client()->run($manifest, timeoutSeconds: 30);

        self::assertSame('exit', $result->outcomeKind);
        self::assertSame(3, $result->verifyReceipt($manifest)->exitCode);
    }

    public function test_an_uploaded_module_runs_by_its_hash(): void
    {
        $client = $this->client();
        $sha256 = $client->uploadModule((string) file_get_contents(Daemon::helloWasm()));

        $result = $client->run(Manifest::fromSha256($sha256)->withStdin('by hash'), timeoutSeconds: 30);

        self::assertSame("hsah yb\n", $result->stdout);
    }

    public function test_a_finished_job_can_be_fetched_and_listed(): void
    {
        $client = $this->client();
        $result = $client->run(Manifest::fromFile(Daemon::helloWasm())->withStdin('listed'), timeoutSeconds: 30);

        $job = $client->getJob($result->jobId);

        self::assertSame($result->jobId, $job->jobId);
        self::assertSame("detsil\n", $job->result?->stdout);
        self::assertContains($result->jobId, array_column($client->listJobs(limit: 1000), 'job_id'));
    }

    public function test_a_looping_job_can_be_cancelled(): void
    {
        $client = $this->client();
        $job = $client->submit(Manifest::fromFile(Daemon::exampleWasm('loop'))->withLimits(timeoutMs: 60_000, fuel: 100_000_000_000));

        $client->cancel($job->jobId);
        $finished = $client->waitForJob($job->jobId, 30);

        self::assertSame('cancelled', $finished->result?->outcomeKind ?? $finished->status);
    }

    public function test_limits_above_the_node_maximum_are_refused_with_the_nodes_code(): void
    {
        try {
            $this->client()->submit(Manifest::fromFile(Daemon::helloWasm())->withLimits(fuel: PHP_INT_MAX));
            self::fail('expected the node to refuse the job');
        } catch (ApiException $e) {
            self::assertSame(400, $e->getHttpStatus());
            self::assertSame('limits_exceeded', $e->getErrorCode());
        }
    }

    public function test_an_unknown_job_is_a_404(): void
    {
        try {
            $this->client()->getJob(str_repeat('0', 32));
            self::fail('expected the node to say the job is unknown');
        } catch (ApiException $e) {
            self::assertSame(404, $e->getHttpStatus());
        }
    }

    public function test_a_node_without_networking_has_no_peers(): void
    {
        self::assertSame([], $this->client()->peers());
    }

    public function test_the_node_verifies_a_real_receipt_and_refuses_a_tampered_one(): void
    {
        $client = $this->client();
        $envelope = $client->run(Manifest::fromFile(Daemon::helloWasm()), timeoutSeconds: 30)->receiptEnvelope();
        $tampered = $envelope;
        $tampered[strlen($tampered) - 1] = chr(ord($tampered[strlen($tampered) - 1]) ^ 0x01);

        self::assertTrue($client->verify($envelope)['valid']);
        self::assertFalse($client->verify($tampered)['valid']);
    }

    public function test_tcp_with_the_token_runs_a_job(): void
    {
        $client = Client::tcp('127.0.0.1', self::$daemon->tcpPort, self::$daemon->token);

        $result = $client->run(Manifest::fromFile(Daemon::helloWasm())->withStdin('tcp'), timeoutSeconds: 30);

        self::assertSame("pct\n", $result->stdout);
    }

    public function test_tcp_with_a_wrong_token_is_refused(): void
    {
        try {
            Client::tcp('127.0.0.1', self::$daemon->tcpPort, 'wrong-token')->health();
            self::fail('expected the node to refuse the token');
        } catch (ApiException $e) {
            self::assertSame(401, $e->getHttpStatus());
        }
    }
}
