<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Exception\VerificationException;
use Plasm\Manifest;
use Plasm\Result;
use Plasm\Tests\Support\Daemon;
use Plasm\Tests\Support\PaddedModule;

/**
 * A 21 MB WASI command runs on a peer with a 17 MiB input file, and the requester saves its
 * 17 MiB output file and checks it against the executor's receipt — through the SDK's public
 * API only, as tests/p2p/test_real_programs_remote.py does from the CLI and the API.
 *
 *   A  the executor (the seed)
 *   B  the requester, bootstrapped from A; the client only talks to B
 *
 * The module is wasm-examples/copyfiles.wasm (copies every file under /input to the same
 * path under /output and prints "<bytes> <relative path>" for each) padded with a 21 MB
 * custom section of random bytes, built afresh by the test so neither node has seen it. The
 * module and the input are too big to ride in one API request (api.max_body_bytes, 32 MiB
 * by default, once base64'd), and the module, the input and the output are each above the
 * 16 MiB job frame cap, so they can only travel between the daemons over /plasm/blob/1.0.0.
 *
 * @large
 */
final class RealProgramOnPeerTest extends DaemonTestCase
{
    private const MIB = 1 << 20;
    private const MODULE_BYTES = 21_000_000;
    private const INPUT_BYTES = 17 * self::MIB;
    private const GUEST_INPUT = '/input/data.bin';
    private const GUEST_OUTPUT = '/output/data.bin';
    private const PEER_TIMEOUT_S = 30.0;
    private const RUN_TIMEOUT_S = 120.0;

    private static ?Daemon $nodeA = null;
    private static ?Daemon $nodeB = null;
    private static string $peerA = '';
    private static string $peerB = '';
    private static string $work = '';

    protected static function startDaemons(string $binary): void
    {
        [self::$nodeA, self::$nodeB] = self::launchPair($binary, timeoutSeconds: self::PEER_TIMEOUT_S);
        self::$peerA = self::$nodeA->peerId();
        self::$peerB = self::$nodeB->peerId();
    }

    public static function setUpBeforeClass(): void
    {
        parent::setUpBeforeClass();
        self::$work = sys_get_temp_dir() . '/plasm-php-big-' . bin2hex(random_bytes(4));
        mkdir(self::$work, 0700);
    }

    public static function tearDownAfterClass(): void
    {
        parent::tearDownAfterClass();
        self::$nodeA = self::$nodeB = null;
        foreach (['copyfiles-21mb.wasm', 'data.bin', 'saved/data.bin'] as $file) {
            @unlink(self::$work . '/' . $file);
        }
        @rmdir(self::$work . '/saved');
        @rmdir(self::$work);
    }

    /** @return array{0: Result, 1: string} the verified result and the saved output's path */
    public function test_the_21_mb_program_on_the_peer_copies_the_input_to_an_output_saved_and_verified(): array
    {
        $module = self::$work . '/copyfiles-21mb.wasm';
        file_put_contents($module, PaddedModule::bytes((string) file_get_contents(Daemon::exampleWasm('copyfiles')), self::MODULE_BYTES));
        self::assertGreaterThan(self::MODULE_BYTES, filesize($module));
        $input = self::$work . '/data.bin';
        file_put_contents($input, random_bytes(self::INPUT_BYTES));
        $manifest = Manifest::fromFile($module)
            ->withInputFile(self::GUEST_INPUT, $input)
            ->withLimits(timeoutMs: 120_000, maxInputFilesBytes: 64 * self::MIB, maxOutputFilesBytes: 64 * self::MIB, maxOutputFileBytes: 64 * self::MIB)
            ->runOnPeer(self::$peerA);
        $client = $this->clientOfB();

        $result = $client->run($manifest, timeoutSeconds: self::RUN_TIMEOUT_S);
        $written = $client->saveOutputs($result, self::$work . '/saved');

        self::assertSame(self::$peerA, $result->executor);
        $receipt = $result->verifyReceipt($manifest);
        self::assertSame([self::$peerA, self::$peerB], [$receipt->executor, $receipt->requester]);
        self::assertSame(hash_file('sha256', $module), $result->moduleSha256);
        self::assertSame(sprintf("%d data.bin\n", self::INPUT_BYTES), $result->stdout);
        self::assertSame([['path' => self::GUEST_OUTPUT, 'size' => self::INPUT_BYTES, 'sha256' => hash_file('sha256', $input)]], $result->outputs());
        $saved = self::$work . '/saved/data.bin';
        self::assertSame([$saved], $written);
        self::assertTrue(file_get_contents($saved) === file_get_contents($input), 'the saved output differs from the input');
        $result->verifyOutputs([self::GUEST_OUTPUT => (string) file_get_contents($saved)]);
        return [$result, $saved];
    }

    /**
     * @depends test_the_21_mb_program_on_the_peer_copies_the_input_to_an_output_saved_and_verified
     * @param array{0: Result, 1: string} $run
     */
    public function test_the_saved_output_with_one_byte_changed_fails_verification_against_the_receipt(array $run): void
    {
        [$result, $saved] = $run;
        $bytes = (string) file_get_contents($saved);
        $middle = intdiv(strlen($bytes), 2);
        $bytes[$middle] = chr(ord($bytes[$middle]) ^ 0x01);

        try {
            $result->verifyOutputs([self::GUEST_OUTPUT => $bytes]);
            self::fail('a tampered output verified');
        } catch (VerificationException $e) {
            self::assertSame('hash_mismatch', $e->getReason(), $e->getMessage());
        }
    }

    private function clientOfB(): Client
    {
        return Client::unix(self::$nodeB->socket, 30.0);
    }
}
