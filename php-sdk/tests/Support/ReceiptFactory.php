<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Encoder;
use Plasm\Identity\PeerId;
use Plasm\Manifest;
use Plasm\Receipt;

/**
 * Builds signed receipt envelopes in PHP with a fixed key, the way the Python signer lays
 * them out (docs/architecture.md, "Receipts"), so verification can be tested without the
 * daemon. Tests change one thing (a field, a byte, the key) and expect verification to fail.
 */
final class ReceiptFactory
{
    public const MODULE = "\0asm\x01\0\0\0";
    public const STDOUT = "dlroW ,olleH\n";
    public const STDERR = '';
    public const NONCE = "0123456789abcdef";

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
        $body = [
            'v' => 1,
            'job_id' => '0190a1b2c3d4e5f60718293a4b5c6d7e',
            'module_sha256' => new ByteString(hash('sha256', self::MODULE, true)),
            // The input of a manifest with no stdin, args or env.
            'input_sha256' => new ByteString(hex2bin(Manifest::fromBytes(self::MODULE)->inputSha256())),
            'stdout_sha256' => new ByteString(hash('sha256', self::STDOUT, true)),
            'stderr_sha256' => new ByteString(hash('sha256', self::STDERR, true)),
            'stdout_len' => strlen(self::STDOUT),
            'stderr_len' => strlen(self::STDERR),
            'stdout_truncated' => false,
            'stderr_truncated' => false,
            'outcome' => 'ok',
            'exit_code' => null,
            'message' => null,
            'fuel_consumed' => 1234,
            'wall_time_us' => 410,
            'limits' => ['fuel' => 1_000_000_000, 'memory_bytes' => 64 << 20, 'timeout_ms' => 10_000, 'max_output_bytes' => 1 << 20, 'max_output_files_bytes' => 16 << 20, 'max_output_file_bytes' => 16 << 20, 'max_output_files' => 64, 'max_input_files_bytes' => 16 << 20],
            'engine' => ['name' => 'wasmtime', 'version' => '50.0.1'],
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

    /** @param array<string, mixed> $overrides */
    public function envelope(array $overrides = []): string
    {
        return $this->seal(Encoder::encode($this->body($overrides)));
    }

    /** Sign these exact body bytes and wrap them in an envelope. */
    public function seal(string $bodyBytes, ?string $signature = null, ?string $publicKey = null): string
    {
        $signature ??= sodium_crypto_sign_detached(Receipt::SIGNING_CONTEXT . $bodyBytes, $this->secretKey);
        return Encoder::encode([
            'v' => 1,
            'body' => new ByteString($bodyBytes),
            'sig' => new ByteString($signature),
            'key' => new ByteString($publicKey ?? $this->publicKey),
        ]);
    }

    public function moduleSha256(): string
    {
        return hash('sha256', self::MODULE);
    }

    /**
     * A job-result object (schemas/job-result.schema.json) carrying a receipt from this factory.
     *
     * @param array<string, mixed> $overrides top-level fields to replace
     * @return array<string, mixed>
     */
    public function jobResult(array $overrides = []): array
    {
        $envelope = $this->envelope();
        return array_merge([
            'job_id' => '0190a1b2c3d4e5f60718293a4b5c6d7e',
            'status' => 'done',
            'outcome' => ['kind' => 'ok', 'exit_code' => null, 'message' => null],
            'stdout' => base64_encode(self::STDOUT),
            'stderr' => base64_encode(self::STDERR),
            'stdout_text' => self::STDOUT,
            'stderr_text' => self::STDERR,
            'stdout_truncated' => false,
            'stderr_truncated' => false,
            'fuel_consumed' => 1234,
            'wall_time_us' => 410,
            'module_sha256' => $this->moduleSha256(),
            'executor' => $this->peerId(),
            'receipt' => [
                'envelope' => base64_encode($envelope),
                'body' => [],
                'signature' => '',
                'public_key' => bin2hex($this->publicKey),
            ],
        ], $overrides);
    }
}
