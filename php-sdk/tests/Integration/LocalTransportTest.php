<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Exception\UnsupportedOperationException;
use Plasm\Manifest;
use Plasm\Tests\Support\Daemon;
use PHPUnit\Framework\TestCase;

/**
 * LocalTransport runs `plasmd execute-job` with no daemon: needs only the plasmd binary.
 *
 * @large
 */
final class LocalTransportTest extends TestCase
{
    private string $stateDir;

    protected function setUp(): void
    {
        if (Daemon::findBinary() === null) {
            if (getenv('PLASM_REQUIRE_INTEGRATION') === '1') {
                self::fail('no plasmd found but PLASM_REQUIRE_INTEGRATION=1');
            }
            self::markTestSkipped('no plasmd found: set PLASMD_BIN or install the project into .venv');
        }
        $this->stateDir = sys_get_temp_dir() . '/plasm-php-local-' . bin2hex(random_bytes(4));
    }

    protected function tearDown(): void
    {
        if (isset($this->stateDir)) {
            exec('rm -rf ' . escapeshellarg($this->stateDir));
        }
    }

    public function test_runs_hello_without_a_daemon_and_the_receipt_verifies(): void
    {
        $client = Client::local((string) Daemon::findBinary(), $this->stateDir);
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('Hello, World');

        $result = $client->run($manifest, timeoutSeconds: 60);

        self::assertSame("dlroW ,olleH\n", $result->stdout);
        self::assertSame($manifest->moduleSha256(), $result->verifyReceipt($manifest)->moduleSha256);
    }

    public function test_passes_args_env_and_limits_to_the_job(): void
    {
        $client = Client::local((string) Daemon::findBinary(), $this->stateDir);
        $manifest = Manifest::fromFile(Daemon::exampleWasm('env_args'))
            ->withArgs('--flag', 'two words')
            ->withEnv(['PLASM_GREETING' => 'hi'])
            ->withLimits(
                fuel: 50_000_000,
                maxOutputFilesBytes: 65_536,
                maxOutputFileBytes: 1_024,
                maxOutputFiles: 9,
                maxInputFilesBytes: 1_048_576,
            );

        $result = $client->run($manifest, timeoutSeconds: 60);

        self::assertStringContainsString('--flag', $result->stdout);
        self::assertStringContainsString('two words', $result->stdout);
        self::assertStringContainsString('PLASM_GREETING=hi', $result->stdout);
        $limits = $result->verifyReceipt($manifest)->limits;
        self::assertSame(50_000_000, $limits['fuel']);
        self::assertSame(
            [65_536, 1_024, 9, 1_048_576],
            [$limits['max_output_files_bytes'], $limits['max_output_file_bytes'], $limits['max_output_files'], $limits['max_input_files_bytes']],
        );
    }

    public function test_runs_a_module_uploaded_to_the_transport_by_hash(): void
    {
        $client = Client::local((string) Daemon::findBinary(), $this->stateDir);
        $sha256 = $client->uploadModule((string) file_get_contents(Daemon::helloWasm()));

        $result = $client->run(Manifest::fromSha256($sha256)->withStdin('abc'), timeoutSeconds: 60);

        self::assertSame("cba\n", $result->stdout);
        self::assertSame($result->jobId, $client->getJob($result->jobId)->jobId);
    }

    public function test_gives_the_job_its_input_files_and_saves_its_verified_outputs(): void
    {
        $client = Client::local((string) Daemon::findBinary(), $this->stateDir);
        $big = random_bytes(Client::INLINE_FILE_BYTES + 1); // sent as a blob, by hash
        $manifest = Manifest::fromFile(Daemon::exampleWasm('copyfiles'))
            ->withInputBytes('/input/small.txt', "small\n")
            ->withInputBytes('/input/dir/big.bin', $big);

        $result = $client->run($manifest, timeoutSeconds: 60);
        $written = $client->saveOutputs($result, $this->stateDir . '/saved');

        self::assertSame(['/output/dir/big.bin', '/output/small.txt'], array_column($result->outputs(), 'path'));
        self::assertSame([$this->stateDir . '/saved/dir/big.bin', $this->stateDir . '/saved/small.txt'], $written);
        self::assertTrue(file_get_contents($this->stateDir . '/saved/dir/big.bin') === $big);
        self::assertSame("small\n", file_get_contents($this->stateDir . '/saved/small.txt'));
    }

    public function test_passes_the_determinism_settings_to_the_job(): void
    {
        $client = Client::local((string) Daemon::findBinary(), $this->stateDir);
        $hello = Manifest::fromFile(Daemon::helloWasm());

        $seeded = $client->run($hello->withDeterminism(seed: 'seed', epochMs: 1_234), timeoutSeconds: 60);
        $off = $client->run($hello->withoutDeterminism(), timeoutSeconds: 60);

        self::assertSame('wasi-p1-det/1', $seeded->verifyReceipt($hello->withDeterminism(seed: 'seed', epochMs: 1_234))->profile);
        self::assertSame('wasi-p1-nondet/1', $off->verifyReceipt($hello->withoutDeterminism())->profile);
    }

    public function test_refuses_what_needs_a_daemon(): void
    {
        $this->expectException(UnsupportedOperationException::class);

        Client::local((string) Daemon::findBinary(), $this->stateDir)->nodeInfo();
    }
}
