<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Encoder;
use Plasm\Cose\Sign1;
use Plasm\Identity\PeerId;
use Plasm\Manifest;
use Plasm\Receipt;

/**
 * Builds signed receipts (COSE_Sign1, body version 2) in PHP with a fixed key, the way the
 * Python signer lays them out (protocol/receipt.py, protocol/cose.py), so verification can be
 * tested without the daemon. Tests change one thing (a field, a byte, the key) and expect
 * verification to fail.
 */
final class ReceiptFactory
{
    public const MODULE = "\0asm\x01\0\0\0";
    public const STDOUT = "dlroW ,olleH\n";
    public const STDERR = '';
    public const NONCE = "0123456789abcdef";
    public const JOB_ID = '0190a1b2c3d4e5f60718293a4b5c6d7e';
    /** The output files of the job: guest path => bytes. */
    public const OUTPUTS = ['/output/a.txt' => "alpha\n", '/output/sub/b.bin' => "\x00\xff"];

    public readonly string $secretKey;
    public readonly string $publicKey;

    public function __construct(string $seed = 'plasm-php-sdk-test-seed-32-bytes')
    {
        $pair = sodium_crypto_sign_seed_keypair($seed);
        $this->secretKey = sodium_crypto_sign_secretkey($pair);
        $this->publicKey = sodium_crypto_sign_publickey($pair);
    }

    public function peerId(): string
    {
        return PeerId::fromPublicKey($this->publicKey);
    }

    /** @return array<string, mixed> a valid receipt body as a map of CBOR values */
    public function body(array $overrides = []): array
    {
        $outputs = [];
        foreach (self::OUTPUTS as $path => $bytes) {
            $outputs[] = ['path' => $path, 'size' => strlen($bytes), 'sha256' => new ByteString(hash('sha256', $bytes, true))];
        }
        $body = [
            'v' => 2,
            'job_id' => self::JOB_ID,
            'module_sha256' => new ByteString(hash('sha256', self::MODULE, true)),
            // The input of a manifest with no stdin, args, env or files.
            'input_sha256' => new ByteString(hex2bin(Manifest::fromBytes(self::MODULE)->inputSha256())),
            'stdout_sha256' => new ByteString(hash('sha256', self::STDOUT, true)),
            'stderr_sha256' => new ByteString(hash('sha256', self::STDERR, true)),
            'stdout_len' => strlen(self::STDOUT),
            'stderr_len' => strlen(self::STDERR),
            'stdout_truncated' => false,
            'stderr_truncated' => false,
            'outputs' => $outputs,
            'outputs_truncated' => false,
            'outcome' => 'ok',
            'exit_code' => null,
            'message' => null,
            'fuel_consumed' => 1234,
            'fuel_exact' => true,
            'wall_time_us' => 410,
            'limits' => self::limits(),
            'engine' => ['name' => 'wasmtime', 'version' => '50.0.1'],
            'profile' => 'wasi-p1-det/1',
            'executor' => $this->peerId(),
            'requester' => $this->peerId(),
            'nonce' => new ByteString(self::NONCE),
            'started_at_ms' => 1_730_000_000_000,
            'finished_at_ms' => 1_730_000_000_001,
        ];
        foreach ($overrides as $key => $value) {
            if ($value instanceof Omit) {
                unset($body[$key]);
            } else {
                $body[$key] = $value;
            }
        }
        return $body;
    }

    /** @return array<string, int> the node's default limits, every field */
    public static function limits(array $overrides = []): array
    {
        return array_merge([
            'fuel' => 1_000_000_000, 'memory_bytes' => 64 << 20, 'timeout_ms' => 10_000, 'max_output_bytes' => 1 << 20,
            'max_output_files_bytes' => 16 << 20, 'max_output_file_bytes' => 16 << 20, 'max_output_files' => 64,
            'max_input_files_bytes' => 16 << 20,
        ], $overrides);
    }

    /**
     * A signed receipt: the COSE_Sign1 bytes of this body (canonically encoded).
     *
     * @param array<string, mixed> $overrides
     */
    public function cose(array $overrides = []): string
    {
        return $this->seal(Encoder::encode($this->body($overrides)));
    }

    /**
     * Sign these exact payload bytes as a COSE_Sign1. $kid defaults to this factory's peer
     * ID, $signature to a correct one over the Sig_structure.
     */
    public function seal(string $payload, ?string $signature = null, ?string $kid = null, string $contentType = Receipt::CONTENT_TYPE): string
    {
        $protected = Sign1::protectedHeader($contentType, $kid ?? $this->peerId());
        $signature ??= sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $this->secretKey);
        return Sign1::encode($protected, $payload, $signature);
    }

    public function moduleSha256(): string
    {
        return hash('sha256', self::MODULE);
    }

    /** @return list<array{path: string, size: int, sha256: string}> the outputs as a job result lists them */
    public static function outputsJson(): array
    {
        $list = [];
        foreach (self::OUTPUTS as $path => $bytes) {
            $list[] = ['path' => $path, 'size' => strlen($bytes), 'sha256' => hash('sha256', $bytes)];
        }
        return $list;
    }

    /** @return array<string, mixed> the body JSON of a receipt that verifies, else [] (a test's forgery) */
    private static function bodyJson(string $cose): array
    {
        try {
            return Receipt::verify($cose)->bodyJson();
        } catch (\Plasm\Exception\VerificationException) {
            return [];
        }
    }

    /**
     * A job-result object (schemas/job-result.schema.json) carrying a receipt from this factory.
     *
     * @param array<string, mixed> $overrides top-level fields to replace
     * @return array<string, mixed>
     */
    public function jobResult(array $overrides = [], ?string $cose = null): array
    {
        $cose ??= $this->cose();
        return array_merge([
            'job_id' => self::JOB_ID,
            'status' => 'done',
            'outcome' => ['kind' => 'ok', 'exit_code' => null, 'message' => null],
            'stdout' => base64_encode(self::STDOUT),
            'stderr' => base64_encode(self::STDERR),
            'stdout_text' => self::STDOUT,
            'stderr_text' => self::STDERR,
            'stdout_truncated' => false,
            'stderr_truncated' => false,
            'outputs' => self::outputsJson(),
            'outputs_truncated' => false,
            'fuel_consumed' => 1234,
            'wall_time_us' => 410,
            'module_sha256' => $this->moduleSha256(),
            'executor' => $this->peerId(),
            'receipt' => [
                'cose' => base64_encode($cose),
                'executor' => $this->peerId(),
                'body' => self::bodyJson($cose),
            ],
        ], $overrides);
    }
}
