<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Exception\VerificationException;
use Plasm\Identity\PeerId;
use Plasm\Manifest;
use Plasm\Receipt;
use PHPUnit\Framework\TestCase;

/**
 * The cross-language vectors tests/vectors/receipt-vectors.json, written by the Python signer
 * (tests/vectors/make_receipt_vectors.py, checked with --check in CI): every valid receipt
 * verifies here with the same fields, and every tampered one fails with the same reason the
 * Python verifier gives.
 *
 * @small
 */
final class ReceiptVectorsTest extends TestCase
{
    private const FILE = __DIR__ . '/../../../tests/vectors/receipt-vectors.json';

    /** @return array<string, mixed> */
    private static function vectors(): array
    {
        static $vectors = null;
        if ($vectors === null) {
            $text = @file_get_contents(self::FILE);
            if ($text === false) {
                throw new \RuntimeException('missing ' . self::FILE . '; generate it with tests/vectors/make_receipt_vectors.py');
            }
            $vectors = json_decode($text, true, 512, JSON_THROW_ON_ERROR);
        }
        return $vectors;
    }

    /** @return array<string, array{array<string, mixed>}> */
    public static function validVectors(): array
    {
        $out = [];
        foreach (self::vectors()['valid'] as $vector) {
            $out[$vector['name']] = [$vector];
        }
        return $out;
    }

    /** @return array<string, array{array<string, mixed>}> */
    public static function tamperedVectors(): array
    {
        $out = [];
        foreach (self::vectors()['tampered'] as $vector) {
            $out[$vector['name']] = [$vector];
        }
        return $out;
    }

    public function test_the_vector_file_has_valid_and_tampered_receipts(): void
    {
        self::assertNotEmpty(self::vectors()['valid']);
        self::assertNotEmpty(self::vectors()['tampered']);
    }

    public function test_peer_ids_of_the_vector_keys_match_python(): void
    {
        foreach (self::vectors()['keys'] as $name => $key) {
            $public = sodium_crypto_sign_publickey(sodium_crypto_sign_seed_keypair(hex2bin($key['seed'])));
            self::assertSame($key['public_key'], bin2hex($public), $name);
            self::assertSame($key['peer_id'], PeerId::fromPublicKey($public), $name);
        }
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_a_python_signed_receipt_verifies_with_everything_it_commits_to(array $vector): void
    {
        $receipt = Receipt::verifyBase64(
            $vector['envelope'],
            moduleSha256: hash('sha256', base64_decode($vector['module'])),
            stdout: base64_decode($vector['stdout']),
            stderr: base64_decode($vector['stderr']),
            executor: $vector['expected']['executor'],
            jobId: $vector['expected']['job_id'],
            nonce: hex2bin($vector['expected']['nonce']),
        );

        self::assertSame($vector['expected']['module_sha256'], $receipt->moduleSha256);
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_a_python_signed_receipt_decodes_to_the_fields_python_reports(array $vector): void
    {
        $receipt = Receipt::verifyBase64($vector['envelope']);
        $body = $vector['receipt_json']['body'];

        self::assertSame(self::sorted($body), self::sorted([
            'engine' => $receipt->engine,
            'executor' => $receipt->executor,
            'exit_code' => $receipt->exitCode,
            'finished_at_ms' => $receipt->finishedAtMs,
            'fuel_consumed' => $receipt->fuelConsumed,
            'input_sha256' => $receipt->inputSha256,
            'job_id' => $receipt->jobId,
            'limits' => $receipt->limits,
            'message' => $receipt->message,
            'module_sha256' => $receipt->moduleSha256,
            'nonce' => bin2hex($receipt->nonce),
            'outcome' => $receipt->outcome,
            'requester' => $receipt->requester,
            'started_at_ms' => $receipt->startedAtMs,
            'stderr_len' => $receipt->stderrLen,
            'stderr_sha256' => $receipt->stderrSha256,
            'stderr_truncated' => $receipt->stderrTruncated,
            'stdout_len' => $receipt->stdoutLen,
            'stdout_sha256' => $receipt->stdoutSha256,
            'stdout_truncated' => $receipt->stdoutTruncated,
            'v' => 1,
            'wall_time_us' => $receipt->wallTimeUs,
        ]));
        self::assertSame($vector['receipt_json']['signature'], bin2hex($receipt->signature));
        self::assertSame($vector['receipt_json']['public_key'], bin2hex($receipt->publicKey));
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_the_input_hash_of_the_same_stdin_args_and_env_matches_python(array $vector): void
    {
        $input = $vector['input'];
        $manifest = Manifest::fromBytes(base64_decode($vector['module']))
            ->withStdin(base64_decode($input['stdin']))
            ->withArgs(...$input['args'])
            ->withEnv($input['env']);

        $receipt = Receipt::verifyBase64($vector['envelope'], inputSha256: $manifest->inputSha256());

        self::assertSame($manifest->inputSha256(), $receipt->inputSha256);
    }

    public function test_a_python_signed_receipt_fails_against_another_input(): void
    {
        $vector = self::vectors()['valid'][0];
        $manifest = Manifest::fromBytes(base64_decode($vector['module']))->withStdin('not the input');

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('hash_mismatch');

        Receipt::verifyBase64($vector['envelope'], inputSha256: $manifest->inputSha256());
    }

    /**
     * @dataProvider tamperedVectors
     * @param array<string, mixed> $vector
     */
    public function test_a_tampered_receipt_fails_with_the_reason_python_gives(array $vector): void
    {
        $with = $vector['verify_with'];
        try {
            Receipt::verifyBase64(
                $vector['envelope'],
                moduleSha256: $with['expected_module_sha256'] ?? null,
                stdout: isset($with['stdout']) ? base64_decode($with['stdout']) : null,
                stderr: isset($with['stderr']) ? base64_decode($with['stderr']) : null,
                executor: $with['expected_executor'] ?? null,
                jobId: $with['expected_job_id'] ?? null,
                nonce: isset($with['expected_nonce']) ? hex2bin($with['expected_nonce']) : null,
            );
        } catch (VerificationException $e) {
            self::assertSame($vector['reason'], $e->getReason(), $e->getMessage());
            return;
        }
        self::fail("tampered vector {$vector['name']} verified");
    }

    /**
     * @param array<string, mixed> $map
     * @return array<string, mixed> the map with keys sorted at every level
     */
    private static function sorted(array $map): array
    {
        ksort($map);
        foreach ($map as $key => $value) {
            if (is_array($value)) {
                $map[$key] = self::sorted($value);
            }
        }
        return $map;
    }
}
