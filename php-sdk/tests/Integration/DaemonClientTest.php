<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Exception\ApiException;
use Plasm\Exception\VerificationException;
use Plasm\Identity\PeerId;
use Plasm\Manifest;
use Plasm\Receipt;
use Plasm\Result;
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

        Receipt::verify($result->receiptCose(), moduleSha256: $manifest->moduleSha256(), stdout: "Hello, World\n");
    }

    public function test_a_real_receipt_with_one_byte_changed_fails_verification(): void
    {
        $result = $this->client()->run(Manifest::fromFile(Daemon::helloWasm())->withStdin('x'), timeoutSeconds: 30);
        $cose = $result->receiptCose();
        $cose[intdiv(strlen($cose), 2)] = chr(ord($cose[intdiv(strlen($cose), 2)]) ^ 0x01);

        $this->expectException(VerificationException::class);

        Receipt::verify($cose);
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
        $cose = $client->run(Manifest::fromFile(Daemon::helloWasm()), timeoutSeconds: 30)->receiptCose();
        $tampered = $cose;
        $tampered[strlen($tampered) - 1] = chr(ord($tampered[strlen($tampered) - 1]) ^ 0x01);

        self::assertTrue($client->verify($cose)['valid']);
        self::assertFalse($client->verify($tampered)['valid']);
    }

    public function test_the_node_and_the_sdk_give_the_same_reason_for_the_same_bad_receipt(): void
    {
        $client = $this->client();
        $cose = $client->run(Manifest::fromFile(Daemon::helloWasm())->withStdin('reasons'), timeoutSeconds: 30)->receiptCose();
        $flip = static function (string $bytes, int $at): string {
            $bytes[$at] = chr(ord($bytes[$at]) ^ 0x01);
            return $bytes;
        };
        $cases = [
            'signature bit' => $flip($cose, strlen($cose) - 1),
            'payload bit' => $flip($cose, strlen($cose) - 100),
            'trailing byte' => $cose . "\x00",
            'truncated' => substr($cose, 0, -1),
            'untagged' => substr($cose, 1),
        ];
        $reasons = [];
        foreach ($cases as $name => $bytes) {
            try {
                Receipt::verify($bytes);
                $sdk = null;
            } catch (VerificationException $e) {
                $sdk = $e->getReason();
            }
            $reasons[$name] = [$sdk, $client->verify($bytes)['reason']];
        }

        foreach ($reasons as $name => [$sdk, $node]) {
            self::assertNotNull($sdk, $name);
            self::assertSame($node, $sdk, $name);
        }
    }

    public function test_a_real_result_lists_no_outputs_and_verifies_every_field(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('fields');
        $result = $this->client()->run($manifest, timeoutSeconds: 30);

        $receipt = $result->verifyOutputs([]);

        self::assertSame([], $result->outputs());
        self::assertSame([], $receipt->outputs);
        self::assertFalse($result->outputsTruncated);
        self::assertContains($receipt->profile, Receipt::PROFILES);
        self::assertSame(Receipt::LIMIT_FIELDS, array_keys($receipt->limits));
        $body = $receipt->bodyJson();
        ksort($body);
        $shown = $result->raw['receipt']['body'];
        ksort($shown);
        self::assertSame($shown, $body);
    }

    public function test_input_files_go_in_and_verified_output_files_come_back_and_are_saved(): void
    {
        $client = $this->client();
        $big = random_bytes(1 << 20);
        $host = tempnam(sys_get_temp_dir(), 'plasm-in');
        file_put_contents($host, "from a host file\n");
        $manifest = Manifest::fromFile(Daemon::exampleWasm('copyfiles'))
            ->withInputFile('/input/host.txt', $host)
            ->withInputBytes('/input/deep/big.bin', $big);
        unlink($host);

        $result = $client->run($manifest, timeoutSeconds: 60);

        self::assertSame(['/output/deep/big.bin', '/output/host.txt'], array_column($result->outputs(), 'path'));
        $files = $client->fetchOutputs($result);
        self::assertSame($big, $files['/output/deep/big.bin']);
        self::assertSame("from a host file\n", $files['/output/host.txt']);
        $dir = sys_get_temp_dir() . '/plasm-out-' . bin2hex(random_bytes(4));
        $written = $client->saveOutputs($result, $dir);
        self::assertCount(2, $written);
        self::assertSame($big, file_get_contents("$dir/deep/big.bin"));
        $this->expectException(VerificationException::class);
        $result->verifyOutputs(['/output/deep/big.bin' => $big, '/output/host.txt' => 'edited']);
    }

    public function test_reuse_local_returns_the_earlier_verified_run_without_running(): void
    {
        $client = $this->client();
        $manifest = Manifest::fromFile(Daemon::exampleWasm('copyfiles'))
            ->withInputBytes('/input/a.txt', "reuse me\n")
            ->withStdin(bin2hex(random_bytes(8)))
            ->withReuse('local');

        $first = $client->run($manifest, timeoutSeconds: 60);
        $second = $client->run($manifest, timeoutSeconds: 60);

        self::assertNull($first->reused());
        self::assertSame(['job_id' => $first->jobId, 'executor' => $first->executor], $second->reused());
        self::assertNotSame($first->jobId, $second->jobId);
        self::assertSame($first->receiptCose(), $second->receiptCose());
        $receipt = $second->verifyReceipt($manifest, executor: $client->nodeInfo()['peer_id']);
        self::assertSame($first->jobId, $receipt->jobId);
        self::assertSame(['/output/a.txt' => "reuse me\n"], $client->fetchOutputs($second));
        self::assertTrue($client->verifyResult($second)['valid']);
        // A reused result whose `reused` names another run is a mismatch.
        $forged = $second->raw;
        $forged['reused']['job_id'] = $second->jobId;
        $this->expectException(VerificationException::class);
        Result::fromArray($forged)->verifyReceipt($manifest);
    }

    public function test_a_blob_uploaded_by_the_sdk_is_stored_under_its_hash(): void
    {
        $bytes = random_bytes(4096);

        self::assertSame(hash('sha256', $bytes), $this->client()->uploadBlob($bytes));
    }

    public function test_an_output_file_the_job_did_not_write_fails_against_a_real_receipt(): void
    {
        $result = $this->client()->run(Manifest::fromFile(Daemon::helloWasm())->withStdin('no files'), timeoutSeconds: 30);

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('hash_mismatch');

        $result->verifyOutputs(['/output/forged.txt' => 'x']);
    }

    public function test_an_edited_field_of_a_real_result_is_a_result_mismatch(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('edited');
        $result = $this->client()->run($manifest, timeoutSeconds: 30);
        $edited = $result->raw;
        $edited['fuel_consumed']++;

        try {
            Result::fromArray($edited)->verifyReceipt($manifest);
            self::fail('the edited result verified');
        } catch (VerificationException $e) {
            self::assertSame('result_mismatch', $e->getReason());
            self::assertSame(sprintf('fuel_consumed: result says %d, receipt says %d', $result->fuelConsumed + 1, $result->fuelConsumed), $e->getDetail());
        }
    }

    public function test_the_input_hash_of_args_env_and_module_name_matches_the_node(): void
    {
        $manifest = Manifest::fromFile(Daemon::exampleWasm('env_args'))
            ->withModuleName('tool.wasm')
            ->withArgs('--name', "w\u{00f6}rld", '')
            ->withEnv(['LANG' => 'C.UTF-8', 'A' => '1'])
            ->withStdin("\x00\xff");

        $result = $this->client()->run($manifest, timeoutSeconds: 30);

        self::assertStringStartsWith("tool.wasm\n--name\nw\u{00f6}rld\n\n", $result->stdout);
        self::assertSame($manifest->inputSha256(), $result->verifyReceipt($manifest)->inputSha256);
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
