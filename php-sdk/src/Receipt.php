<?php

declare(strict_types=1);

namespace Plasm;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Decoder;
use Plasm\Cbor\Map;
use Plasm\Exception\DecodeException;
use Plasm\Exception\VerificationException;
use Plasm\Identity\PeerId;

/*
 * Theory of operation: a receipt travels as an envelope, canonical CBOR
 * {"v": 1, "body": bytes, "sig": bytes(64), "key": bytes(32)}, where `body` is itself the
 * canonical CBOR of the receipt map and `sig` is Ed25519 over "plasm/receipt/v1\0" . body.
 * Receipt::verify() is the only way to obtain a Receipt, so holding one means all of this held,
 * checked in the same order as the Python verifier (protocol/receipt.py) so that both report
 * the same reason for the same bad receipt:
 *   1. the envelope and its body decode strictly, the envelope has exactly its four fields
 *      and the body names an executor (else `malformed`);
 *   2. the peer ID of the envelope key is the body's `executor` (else `key_mismatch`);
 *   3. the signature checks with sodium over the exact body bytes received — never over a
 *      re-encoding (else `bad_signature`);
 *   4. the body is version 1 (else `unsupported_version`) and has exactly the receipt fields
 *      with their types (else `malformed`);
 *   5. every expectation the caller passes holds: executor, job id, nonce, module hash, input
 *      hash, stdout and stderr bytes (else `executor_mismatch`, `job_id_mismatch`, `nonce_mismatch`,
 *      `hash_mismatch`).
 * Before step 3 only `executor` is read from the body, which is decoded but not yet trusted.
 */
final class Receipt
{
    public const SIGNING_CONTEXT = "plasm/receipt/v1\x00";
    public const VERSION = 1;
    public const OUTCOMES = ['ok', 'exit', 'trap', 'out_of_fuel', 'timeout', 'memory_limit', 'invalid_module', 'compile_limit', 'cancelled'];
    private const MAX_ENVELOPE_BYTES = 1 << 20;
    private const ENVELOPE_FIELDS = ['v', 'body', 'sig', 'key'];
    /** field => type: int, uint, text, bool, bytes32, bytes16, ?int, ?text, limits, engine */
    private const BODY_FIELDS = [
        'v' => 'uint', 'job_id' => 'text', 'module_sha256' => 'bytes32', 'input_sha256' => 'bytes32',
        'stdout_sha256' => 'bytes32', 'stderr_sha256' => 'bytes32', 'stdout_len' => 'uint',
        'stderr_len' => 'uint', 'stdout_truncated' => 'bool', 'stderr_truncated' => 'bool',
        'outcome' => 'text', 'exit_code' => '?int', 'message' => '?text', 'fuel_consumed' => 'uint',
        'wall_time_us' => 'uint', 'limits' => 'limits', 'engine' => 'engine', 'executor' => 'text',
        'requester' => 'text', 'nonce' => 'bytes16', 'started_at_ms' => 'uint', 'finished_at_ms' => 'uint',
    ];
    private const LIMIT_FIELDS = [
        'fuel', 'memory_bytes', 'timeout_ms', 'max_output_bytes',
        'max_output_files_bytes', 'max_output_file_bytes', 'max_output_files', 'max_input_files_bytes',
    ];
    private const ENGINE_FIELDS = ['name', 'version'];

    /** @var list<string> what verify() checked beyond signature and key, for summary() */
    private array $checked = [];

    /**
     * @param array<string, int> $limits
     * @param array<string, string> $engine
     */
    private function __construct(
        public readonly string $envelope,
        public readonly string $body,
        public readonly string $signature,
        public readonly string $publicKey,
        public readonly string $jobId,
        public readonly string $moduleSha256,
        public readonly string $inputSha256,
        public readonly string $stdoutSha256,
        public readonly string $stderrSha256,
        public readonly int $stdoutLen,
        public readonly int $stderrLen,
        public readonly bool $stdoutTruncated,
        public readonly bool $stderrTruncated,
        public readonly string $outcome,
        public readonly ?int $exitCode,
        public readonly ?string $message,
        public readonly int $fuelConsumed,
        public readonly int $wallTimeUs,
        public readonly array $limits,
        public readonly array $engine,
        public readonly string $executor,
        public readonly string $requester,
        public readonly string $nonce,
        public readonly int $startedAtMs,
        public readonly int $finishedAtMs,
    ) {
    }

    /**
     * Verify an envelope and return the receipt it carries; throws VerificationException.
     *
     * @param string|null $moduleSha256 hex sha256 of the module bytes the client sent
     * @param string|null $stdout the exact stdout bytes the client received
     * @param string|null $stderr the exact stderr bytes the client received
     * @param string|null $executor the peer ID the client expects to have run the job
     * @param string|null $jobId the job id the client was given
     * @param string|null $nonce the raw 16-byte nonce the client chose, if it chose one
     * @param string|null $inputSha256 hex hash of the input sent (Manifest::inputSha256())
     */
    public static function verify(
        string $envelope,
        ?string $moduleSha256 = null,
        ?string $stdout = null,
        ?string $stderr = null,
        ?string $executor = null,
        ?string $jobId = null,
        ?string $nonce = null,
        ?string $inputSha256 = null,
    ): self {
        [$body, $signature, $publicKey] = self::openEnvelope($envelope);
        $map = self::decodeMap($body, 'body');
        $named = $map->has('executor') ? $map->get('executor') : null;
        if (!is_string($named)) {
            throw new VerificationException('malformed', 'the receipt body names no executor');
        }
        $keyPeer = PeerId::fromPublicKey($publicKey);
        if ($keyPeer !== $named) {
            throw new VerificationException('key_mismatch', sprintf('the receipt was signed by %s but names %s as executor', $keyPeer, $named));
        }
        if (!sodium_crypto_sign_verify_detached($signature, self::SIGNING_CONTEXT . $body, $publicKey)) {
            throw new VerificationException('bad_signature', 'the ed25519 signature does not match the receipt body; it was altered');
        }
        $receipt = self::fromBody($map, $envelope, $body, $signature, $publicKey);
        $receipt->checkExpectations($moduleSha256, $inputSha256, $stdout, $stderr, $executor, $jobId, $nonce);
        return $receipt;
    }

    /** Verify the base64 envelope of the JSON form (`receipt.envelope` in job results). */
    public static function verifyBase64(string $envelopeBase64, mixed ...$expectations): self
    {
        $envelope = base64_decode($envelopeBase64, true);
        if ($envelope === false) {
            throw new VerificationException('malformed', 'the receipt envelope is not valid base64');
        }
        return self::verify($envelope, ...$expectations);
    }

    /** The executor's peer ID, derived from the signing key (equal to $executor once verified). */
    public function signerPeerId(): string
    {
        return PeerId::fromPublicKey($this->publicKey);
    }

    public function durationMs(): int
    {
        return $this->finishedAtMs - $this->startedAtMs;
    }

    /** @return list<string> the expectations verify() was given and checked (e.g. "stdout") */
    public function checkedExpectations(): array
    {
        return $this->checked;
    }

    /** A few human-readable lines; `verified` because a Receipt only exists once verified. */
    public function summary(): string
    {
        $checked = implode(', ', ['signature', 'executor key', ...$this->checked]);
        $outcome = $this->outcome . ($this->exitCode !== null ? " (exit code {$this->exitCode})" : '')
            . ($this->message !== null ? " — {$this->message}" : '');
        $lines = [
            "receipt:   verified ({$checked})",
            "job:       {$this->jobId}",
            "executor:  {$this->executor}",
            "requester: {$this->requester}",
            "module:    sha256 {$this->moduleSha256}",
            "outcome:   {$outcome}",
            sprintf('stdout:    %d bytes%s, sha256 %s', $this->stdoutLen, $this->stdoutTruncated ? ' (truncated)' : '', $this->stdoutSha256),
            sprintf('stderr:    %d bytes%s, sha256 %s', $this->stderrLen, $this->stderrTruncated ? ' (truncated)' : '', $this->stderrSha256),
            sprintf('fuel:      %d of %d', $this->fuelConsumed, $this->limits['fuel']),
            sprintf('time:      %d µs wall, started %s', $this->wallTimeUs, gmdate('Y-m-d\TH:i:s', intdiv($this->startedAtMs, 1000)) . sprintf('.%03dZ', $this->startedAtMs % 1000)),
            sprintf('engine:    %s %s', $this->engine['name'], $this->engine['version']),
        ];
        return implode("\n", $lines);
    }

    /** @return array{0: string, 1: string, 2: string} body, signature, public key */
    private static function openEnvelope(string $envelope): array
    {
        $map = self::decodeMap($envelope, 'envelope');
        self::requireExactKeys($map, self::ENVELOPE_FIELDS, 'envelope');
        if ($map->get('v') !== self::VERSION) {
            throw new VerificationException('malformed', sprintf('envelope version is %s, this verifier knows version %d', json_encode($map->get('v')), self::VERSION));
        }
        $body = self::bytesField($map, 'body', null, 'envelope');
        $signature = self::bytesField($map, 'sig', SODIUM_CRYPTO_SIGN_BYTES, 'envelope');
        $publicKey = self::bytesField($map, 'key', SODIUM_CRYPTO_SIGN_PUBLICKEYBYTES, 'envelope');
        return [$body, $signature, $publicKey];
    }

    private static function fromBody(Map $map, string $envelope, string $body, string $signature, string $publicKey): self
    {
        $version = $map->has('v') ? $map->get('v') : null;
        if ($version !== self::VERSION) {
            throw new VerificationException('unsupported_version', sprintf('receipt version %s is not supported; this verifier reads version %d', json_encode($version), self::VERSION));
        }
        self::requireExactKeys($map, array_keys(self::BODY_FIELDS), 'body');
        $f = [];
        foreach (self::BODY_FIELDS as $name => $type) {
            $f[$name] = self::typedField($map, $name, $type);
        }
        if (preg_match('/\A[0-9a-f]{32}\z/', $f['job_id']) !== 1) {
            throw new VerificationException('malformed', 'receipt job_id is not 32 lowercase hex characters');
        }
        if (!in_array($f['outcome'], self::OUTCOMES, true)) {
            throw new VerificationException('malformed', sprintf('receipt outcome "%s" is not a known outcome', $f['outcome']));
        }
        return new self(
            $envelope, $body, $signature, $publicKey,
            $f['job_id'], $f['module_sha256'], $f['input_sha256'], $f['stdout_sha256'], $f['stderr_sha256'],
            $f['stdout_len'], $f['stderr_len'], $f['stdout_truncated'], $f['stderr_truncated'],
            $f['outcome'], $f['exit_code'], $f['message'], $f['fuel_consumed'], $f['wall_time_us'],
            $f['limits'], $f['engine'], $f['executor'], $f['requester'], $f['nonce'],
            $f['started_at_ms'], $f['finished_at_ms'],
        );
    }

    private function checkExpectations(?string $moduleSha256, ?string $inputSha256, ?string $stdout, ?string $stderr, ?string $executor, ?string $jobId, ?string $nonce): void
    {
        $given = ['executor' => $executor, 'job id' => $jobId, 'nonce' => $nonce, 'module hash' => $moduleSha256, 'input hash' => $inputSha256, 'stdout' => $stdout, 'stderr' => $stderr];
        $this->checked = array_keys(array_filter($given, static fn (?string $value): bool => $value !== null));
        if ($executor !== null && $executor !== $this->executor) {
            throw new VerificationException('executor_mismatch', sprintf('the receipt was issued by %s, expected %s', $this->executor, $executor));
        }
        if ($jobId !== null && $jobId !== $this->jobId) {
            throw new VerificationException('job_id_mismatch', sprintf('the receipt is for job %s, expected %s', $this->jobId, $jobId));
        }
        if ($nonce !== null && !hash_equals($this->nonce, $nonce)) {
            throw new VerificationException('nonce_mismatch', 'the receipt answers another request (its nonce is not the one this client chose)');
        }
        if ($moduleSha256 !== null && strtolower($moduleSha256) !== $this->moduleSha256) {
            throw new VerificationException('hash_mismatch', sprintf('the receipt is for module %s, not the module sent (%s)', $this->moduleSha256, strtolower($moduleSha256)));
        }
        if ($inputSha256 !== null && strtolower($inputSha256) !== $this->inputSha256) {
            throw new VerificationException('hash_mismatch', 'the receipt is for another input (stdin, args or env differ from what was sent)');
        }
        foreach (['stdout' => $stdout, 'stderr' => $stderr] as $stream => $bytes) {
            if ($bytes === null) {
                continue;
            }
            $signedHash = $stream === 'stdout' ? $this->stdoutSha256 : $this->stderrSha256;
            $signedLen = $stream === 'stdout' ? $this->stdoutLen : $this->stderrLen;
            if (strlen($bytes) !== $signedLen || hash('sha256', $bytes) !== $signedHash) {
                throw new VerificationException('hash_mismatch', sprintf('the %s received (%d bytes) is not the %s the receipt signs (%d bytes, sha256 %s)', $stream, strlen($bytes), $stream, $signedLen, $signedHash));
            }
        }
    }

    private static function decodeMap(string $bytes, string $what): Map
    {
        try {
            $value = Decoder::decode($bytes, self::MAX_ENVELOPE_BYTES);
        } catch (DecodeException $e) {
            throw new VerificationException('malformed', sprintf('the receipt %s is not valid cbor: %s', $what, $e->getMessage()), $e);
        }
        if (!$value instanceof Map) {
            throw new VerificationException('malformed', sprintf('the receipt %s is not a cbor map', $what));
        }
        return $value;
    }

    /** @param list<string> $expected */
    private static function requireExactKeys(Map $map, array $expected, string $what): void
    {
        $missing = array_diff($expected, $map->keys());
        $extra = array_diff($map->keys(), $expected);
        if ($missing !== [] || $extra !== []) {
            throw new VerificationException('malformed', sprintf(
                'the receipt %s has the wrong fields (missing: %s; unexpected: %s)',
                $what,
                $missing === [] ? 'none' : implode(', ', $missing),
                $extra === [] ? 'none' : implode(', ', $extra),
            ));
        }
    }

    private static function bytesField(Map $map, string $name, ?int $length, string $what): string
    {
        $value = $map->get($name);
        if (!$value instanceof ByteString || ($length !== null && $value->length() !== $length)) {
            throw new VerificationException('malformed', sprintf('the receipt %s field "%s" must be %s', $what, $name, $length === null ? 'bytes' : "$length bytes"));
        }
        return $value->bytes;
    }

    private static function typedField(Map $map, string $name, string $type): mixed
    {
        $value = $map->get($name);
        $nullable = str_starts_with($type, '?');
        if ($nullable && $value === null) {
            return null;
        }
        $base = ltrim($type, '?');
        $ok = match ($base) {
            'int' => is_int($value),
            'uint' => is_int($value) && $value >= 0,
            'text' => is_string($value),
            'bool' => is_bool($value),
            'bytes32' => $value instanceof ByteString && $value->length() === 32,
            'bytes16' => $value instanceof ByteString && $value->length() === 16,
            'limits' => $value instanceof Map && self::isRecord($value, self::LIMIT_FIELDS, 'positive'),
            'engine' => $value instanceof Map && self::isRecord($value, self::ENGINE_FIELDS, 'text'),
        };
        if (!$ok) {
            throw new VerificationException('malformed', sprintf('the receipt body field "%s" is not of type %s', $name, $type));
        }
        return match ($base) {
            'bytes32' => $value->hex(),
            'bytes16' => $value->bytes,
            'limits' => self::record($value, self::LIMIT_FIELDS),
            'engine' => self::record($value, self::ENGINE_FIELDS),
            default => $value,
        };
    }

    /**
     * @param list<string> $fields
     * @return array<string, mixed> the fields in the documented order
     */
    private static function record(Map $map, array $fields): array
    {
        $out = [];
        foreach ($fields as $field) {
            $out[$field] = $map->get($field);
        }
        return $out;
    }

    /** @param list<string> $fields */
    private static function isRecord(Map $map, array $fields, string $type): bool
    {
        $keys = $map->keys();
        sort($keys);
        $want = $fields;
        sort($want);
        if ($keys !== $want) {
            return false;
        }
        foreach ($map as $value) {
            if ($type === 'positive' ? !(is_int($value) && $value > 0) : !is_string($value)) {
                return false;
            }
        }
        return true;
    }
}
