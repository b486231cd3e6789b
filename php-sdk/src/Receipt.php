<?php

declare(strict_types=1);

namespace Plasm;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Decoder;
use Plasm\Cbor\Encoder;
use Plasm\Cbor\Map;
use Plasm\Cose\Sign1;
use Plasm\Exception\DecodeException;
use Plasm\Exception\VerificationException;
use Plasm\Identity\PeerId;

/*
 * Theory of operation: a receipt (version 2) is a COSE_Sign1 (RFC 9052, see Cose\Sign1) of
 * content type application/vnd.plasm.receipt+cbor whose kid is the executor's peer ID and
 * whose payload is the canonical CBOR receipt body. Receipt::verify() is the only way to
 * obtain a Receipt, so holding one means all of this held, checked in the same order as the
 * Python verifier (protocol/receipt.py) so that both report the same reason for the same
 * bad receipt:
 *   1. the COSE_Sign1 is in Plasm's one accepted encoding and its payload decodes strictly
 *      (else `malformed`; a version 1 envelope map is `unsupported_version`);
 *   2. the kid is the body's `executor` (else `key_mismatch`);
 *   3. Ed25519 by the key inside the kid's peer ID over the Sig_structure, which the SDK
 *      encodes itself (else `bad_signature`; a kid naming no Ed25519 key is `malformed`);
 *   4. the body is version 2 (else `unsupported_version`), has exactly the documented fields
 *      and types (else `malformed`) and is the canonical encoding of itself: re-encoded with
 *      Cbor\Encoder it gives the payload back byte for byte (else `malformed`);
 *   5. every expectation the caller passes holds: executor, job id, nonce, module hash, input
 *      hash, stdout, stderr and output file bytes (else `executor_mismatch`,
 *      `job_id_mismatch`, `nonce_mismatch`, `hash_mismatch`).
 * Before step 3 only `executor` is read from the body, which is decoded but not yet trusted.
 */
final class Receipt
{
    public const VERSION = 2;
    public const CONTENT_TYPE = Sign1::CONTENT_TYPE_RECEIPT;
    public const OUTCOMES = ['ok', 'exit', 'trap', 'out_of_fuel', 'timeout', 'memory_limit', 'invalid_module', 'compile_limit', 'cancelled'];
    public const PROFILES = ['wasi-p1-det/1', 'wasi-p1-nondet/1'];
    /** The limit fields in their documented order (schemas/receipt.schema.json). */
    public const LIMIT_FIELDS = [
        'fuel', 'memory_bytes', 'timeout_ms', 'max_output_bytes', 'max_output_files_bytes',
        'max_output_file_bytes', 'max_output_files', 'max_input_files_bytes',
    ];
    private const MAX_COSE_BYTES = 1 << 20;
    /** field => type: uint, text, bool, bytes32, bytes16, ?int, ?text, limits, engine, outputs */
    private const BODY_FIELDS = [
        'v' => 'uint', 'job_id' => 'text', 'module_sha256' => 'bytes32', 'input_sha256' => 'bytes32',
        'stdout_sha256' => 'bytes32', 'stderr_sha256' => 'bytes32', 'stdout_len' => 'uint',
        'stderr_len' => 'uint', 'stdout_truncated' => 'bool', 'stderr_truncated' => 'bool',
        'outputs' => 'outputs', 'outputs_truncated' => 'bool',
        'outcome' => 'text', 'exit_code' => '?int', 'message' => '?text', 'fuel_consumed' => 'uint',
        'fuel_exact' => 'bool', 'wall_time_us' => 'uint', 'limits' => 'limits', 'engine' => 'engine',
        'profile' => 'text', 'executor' => 'text', 'requester' => 'text', 'nonce' => 'bytes16',
        'started_at_ms' => 'uint', 'finished_at_ms' => 'uint',
    ];
    /** Body fields two honest runs of one job may differ in, left out of agreementKey() (protocol/quorum.py). */
    public const NON_DETERMINISTIC_FIELDS = [
        'job_id', 'nonce', 'requester', 'executor', 'started_at_ms', 'finished_at_ms',
        'wall_time_us', 'engine', 'message',
    ];
    private const OUTPUT_FIELDS = ['path', 'size', 'sha256'];
    private const ENGINE_FIELDS = ['name', 'version'];

    /** @var list<string> what verify() checked beyond signature and key, for summary() */
    private array $checked = [];

    /**
     * @param list<array{path: string, size: int, sha256: string}> $outputs sha256 as hex
     * @param array<string, int> $limits
     * @param array<string, string> $engine
     */
    private function __construct(
        public readonly string $cose,
        public readonly string $payload,
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
        public readonly array $outputs,
        public readonly bool $outputsTruncated,
        public readonly string $outcome,
        public readonly ?int $exitCode,
        public readonly ?string $message,
        public readonly int $fuelConsumed,
        public readonly bool $fuelExact,
        public readonly int $wallTimeUs,
        public readonly array $limits,
        public readonly array $engine,
        public readonly string $profile,
        public readonly string $executor,
        public readonly string $requester,
        public readonly string $nonce,
        public readonly int $startedAtMs,
        public readonly int $finishedAtMs,
    ) {
    }

    /**
     * Verify a receipt (its tagged COSE_Sign1 bytes) and return it; throws VerificationException.
     *
     * @param string|null $moduleSha256 hex sha256 of the module bytes the client sent
     * @param string|null $stdout the exact stdout bytes the client received
     * @param string|null $stderr the exact stderr bytes the client received
     * @param string|null $executor the peer ID the client expects to have run the job
     * @param string|null $jobId the job id the client was given
     * @param string|null $nonce the raw 16-byte nonce the client chose, if it chose one
     * @param string|null $inputSha256 hex hash of the input sent (Manifest::inputSha256())
     * @param array<string, string>|null $outputs every output file, guest path => bytes
     *        (e.g. "/output/result.txt" => ...): exactly the receipt's files, same bytes
     */
    public static function verify(
        string $cose,
        ?string $moduleSha256 = null,
        ?string $stdout = null,
        ?string $stderr = null,
        ?string $executor = null,
        ?string $jobId = null,
        ?string $nonce = null,
        ?string $inputSha256 = null,
        ?array $outputs = null,
    ): self {
        [$signed, $body] = self::decode($cose);
        $named = $body instanceof Map && $body->has('executor') ? $body->get('executor') : null;
        if (!is_string($named)) {
            throw new VerificationException('malformed', 'the receipt body names no executor');
        }
        if ($signed->kid !== $named) {
            throw new VerificationException('key_mismatch', sprintf('the receipt was signed by %s but names executor %s', $signed->kid, $named));
        }
        try {
            $publicKey = PeerId::toPublicKey($signed->kid);
        } catch (DecodeException $e) {
            throw new VerificationException('malformed', sprintf("the receipt's kid names no key: %s", $e->getMessage()), $e);
        }
        if (!$signed->verifySignature($publicKey)) {
            throw new VerificationException('bad_signature', 'the signature does not match the receipt body; it was altered');
        }
        $receipt = self::fromBody($body, $cose, $signed, $publicKey);
        if (Encoder::encode($body) !== $signed->payload) {
            throw new VerificationException('malformed', 'the receipt body is not in canonical CBOR (RFC 8949 core deterministic)');
        }
        $receipt->checkExpectations($moduleSha256, $inputSha256, $stdout, $stderr, $executor, $jobId, $nonce, $outputs);
        return $receipt;
    }

    /**
     * Verify the JSON form of a receipt ({"cose": base64, "executor", "body"}, as job results
     * carry it) or just its base64 string. Only `cose` is read: `executor` and `body` are for
     * people. Takes the same expectations as verify().
     *
     * @param array<string, mixed>|string $receipt
     */
    public static function verifyJson(array|string $receipt, mixed ...$expectations): self
    {
        if (is_array($receipt)) {
            if (is_string($receipt['envelope'] ?? null) && !array_key_exists('cose', $receipt)) {
                throw new VerificationException('unsupported_version', "this is a version 1 receipt ('envelope', plasmd 0.2 and older); this SDK verifies COSE_Sign1 receipts ('cose') only: check it with the plasmd that made it");
            }
            if (!is_string($receipt['cose'] ?? null)) {
                throw new VerificationException('malformed', "a receipt in JSON has a 'cose' string (base64)");
            }
            $receipt = $receipt['cose'];
        }
        return self::verifyBase64($receipt, ...$expectations);
    }

    /** Verify the base64 COSE bytes (`receipt.cose` in job results). */
    public static function verifyBase64(string $coseBase64, mixed ...$expectations): self
    {
        $cose = base64_decode($coseBase64, true);
        if ($cose === false) {
            throw new VerificationException('malformed', "the receipt's cose is not valid base64");
        }
        return self::verify($cose, ...$expectations);
    }

    /** The executor's peer ID: the kid, equal to $executor once verified. */
    public function signerPeerId(): string
    {
        return PeerId::fromPublicKey($this->publicKey);
    }

    public function durationMs(): int
    {
        return $this->finishedAtMs - $this->startedAtMs;
    }

    /**
     * Hex sha256 of the canonical CBOR of the body without NON_DETERMINISTIC_FIELDS (and
     * without fuel_consumed when fuel_exact is false): the replicas of a quorum job agree
     * when their receipts' keys are equal (protocol/quorum.py agreement_key).
     */
    public function agreementKey(): string
    {
        $body = Decoder::decode($this->payload, self::MAX_COSE_BYTES);
        $kept = new Map();
        foreach ($body as $key => $value) {
            if (in_array($key, self::NON_DETERMINISTIC_FIELDS, true)
                || ($key === 'fuel_consumed' && !$this->fuelExact)) {
                continue;
            }
            $kept->set($key, $value);
        }
        return hash('sha256', Encoder::encode($kept));
    }

    /** @return list<string> the expectations verify() was given and checked (e.g. "stdout") */
    public function checkedExpectations(): array
    {
        return $this->checked;
    }

    /**
     * The body as JSON shows it (receipt.body in job results): hashes and the nonce as
     * lowercase hex, everything else as in CBOR.
     *
     * @return array<string, mixed>
     */
    public function bodyJson(): array
    {
        return [
            'v' => self::VERSION,
            'job_id' => $this->jobId,
            'module_sha256' => $this->moduleSha256,
            'input_sha256' => $this->inputSha256,
            'stdout_sha256' => $this->stdoutSha256,
            'stderr_sha256' => $this->stderrSha256,
            'stdout_len' => $this->stdoutLen,
            'stderr_len' => $this->stderrLen,
            'stdout_truncated' => $this->stdoutTruncated,
            'stderr_truncated' => $this->stderrTruncated,
            'outputs' => $this->outputs,
            'outputs_truncated' => $this->outputsTruncated,
            'outcome' => $this->outcome,
            'exit_code' => $this->exitCode,
            'message' => $this->message,
            'fuel_consumed' => $this->fuelConsumed,
            'fuel_exact' => $this->fuelExact,
            'wall_time_us' => $this->wallTimeUs,
            'limits' => $this->limits,
            'engine' => $this->engine,
            'profile' => $this->profile,
            'executor' => $this->executor,
            'requester' => $this->requester,
            'nonce' => bin2hex($this->nonce),
            'started_at_ms' => $this->startedAtMs,
            'finished_at_ms' => $this->finishedAtMs,
        ];
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
            sprintf('outputs:   %d file%s%s', count($this->outputs), count($this->outputs) === 1 ? '' : 's', $this->outputsTruncated ? ' (truncated)' : ''),
        ];
        foreach ($this->outputs as $file) {
            $lines[] = sprintf('           %s: %d bytes, sha256 %s', $file['path'], $file['size'], $file['sha256']);
        }
        array_push(
            $lines,
            sprintf('fuel:      %d of %d%s', $this->fuelConsumed, $this->limits['fuel'], $this->fuelExact ? '' : ' (depends on when the job was stopped)'),
            sprintf('time:      %d µs wall, started %s', $this->wallTimeUs, gmdate('Y-m-d\TH:i:s', intdiv($this->startedAtMs, 1000)) . sprintf('.%03dZ', $this->startedAtMs % 1000)),
            sprintf('engine:    %s %s, profile %s', $this->engine['name'], $this->engine['version'], $this->profile),
        );
        return implode("\n", $lines);
    }

    /** @return array{0: Sign1, 1: mixed} the COSE_Sign1 and its decoded (untrusted) payload */
    private static function decode(string $cose): array
    {
        if ($cose !== '' && ($cose[0] === "\xa4" || $cose[0] === "\xb9")) {
            throw new VerificationException('unsupported_version', 'this is a version 1 receipt (a Plasm envelope map, plasmd 0.2 and older); this SDK verifies COSE_Sign1 receipts (version 2) only: check it with the plasmd that made it');
        }
        try {
            $signed = Sign1::decode($cose, self::MAX_COSE_BYTES, self::CONTENT_TYPE);
            $body = Decoder::decode($signed->payload, self::MAX_COSE_BYTES);
        } catch (DecodeException $e) {
            throw new VerificationException('malformed', sprintf('the receipt cannot be decoded: %s', $e->getMessage()), $e);
        }
        return [$signed, $body];
    }

    private static function fromBody(mixed $body, string $cose, Sign1 $signed, string $publicKey): self
    {
        if (!$body instanceof Map || !$body->has('v')) {
            throw new VerificationException('malformed', "the receipt body is not a map with a version 'v'");
        }
        $version = $body->get('v');
        if ($version !== self::VERSION) {
            throw new VerificationException('unsupported_version', sprintf('receipt version %s is not supported; this SDK reads version %d', json_encode($version), self::VERSION));
        }
        self::requireExactKeys($body, array_keys(self::BODY_FIELDS), 'body');
        $f = [];
        foreach (self::BODY_FIELDS as $name => $type) {
            $f[$name] = self::typedField($body, $name, $type);
        }
        if (preg_match('/\A[0-9a-f]{32}\z/', $f['job_id']) !== 1) {
            self::malformed('job_id must be 32 lowercase hex characters');
        }
        if (!in_array($f['outcome'], self::OUTCOMES, true)) {
            self::malformed(sprintf('outcome "%s" is not a known outcome', $f['outcome']));
        }
        if (!in_array($f['profile'], self::PROFILES, true)) {
            self::malformed(sprintf('profile "%s" is not one of %s', $f['profile'], implode(', ', self::PROFILES)));
        }
        try {
            PeerId::toPublicKey($f['executor']);
        } catch (DecodeException $e) {
            self::malformed('executor: ' . $e->getMessage());
        }
        return new self(
            $cose, $signed->payload, $signed->signature, $publicKey,
            $f['job_id'], $f['module_sha256'], $f['input_sha256'], $f['stdout_sha256'], $f['stderr_sha256'],
            $f['stdout_len'], $f['stderr_len'], $f['stdout_truncated'], $f['stderr_truncated'],
            $f['outputs'], $f['outputs_truncated'],
            $f['outcome'], $f['exit_code'], $f['message'], $f['fuel_consumed'], $f['fuel_exact'], $f['wall_time_us'],
            $f['limits'], $f['engine'], $f['profile'], $f['executor'], $f['requester'], $f['nonce'],
            $f['started_at_ms'], $f['finished_at_ms'],
        );
    }

    /** @param array<string, string>|null $outputs */
    private function checkExpectations(?string $moduleSha256, ?string $inputSha256, ?string $stdout, ?string $stderr, ?string $executor, ?string $jobId, ?string $nonce, ?array $outputs): void
    {
        $given = ['executor' => $executor, 'job id' => $jobId, 'nonce' => $nonce, 'module hash' => $moduleSha256, 'input hash' => $inputSha256, 'stdout' => $stdout, 'stderr' => $stderr, 'output files' => $outputs];
        $this->checked = array_keys(array_filter($given, static fn (mixed $value): bool => $value !== null));
        if ($executor !== null && $executor !== $this->executor) {
            throw new VerificationException('executor_mismatch', sprintf('the receipt is from %s, not the expected %s', $this->executor, $executor));
        }
        if ($jobId !== null && $jobId !== $this->jobId) {
            throw new VerificationException('job_id_mismatch', sprintf('the receipt is for job %s, not %s', $this->jobId, $jobId));
        }
        if ($nonce !== null && !hash_equals($this->nonce, $nonce)) {
            throw new VerificationException('nonce_mismatch', 'the receipt answers another request (its nonce is not the one this client chose)');
        }
        if ($moduleSha256 !== null && strtolower($moduleSha256) !== $this->moduleSha256) {
            throw new VerificationException('hash_mismatch', sprintf('the receipt is for module %s, not the module sent (%s)', $this->moduleSha256, strtolower($moduleSha256)));
        }
        if ($inputSha256 !== null && strtolower($inputSha256) !== $this->inputSha256) {
            throw new VerificationException('hash_mismatch', 'the receipt is for another input (stdin, args, env, module name or input files differ from what was sent)');
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
        if ($outputs !== null) {
            $this->checkOutputFiles($outputs);
        }
    }

    /**
     * The output files given (guest path => bytes) are exactly the receipt's: the same paths,
     * sizes and sha256; VerificationException (`hash_mismatch`) naming the first path that differs.
     *
     * @param array<string, string> $outputs
     */
    public function checkOutputFiles(array $outputs): void
    {
        $signed = [];
        foreach ($this->outputs as $file) {
            $signed[$file['path']] = $file;
        }
        $given = [];
        foreach ($outputs as $path => $bytes) {
            if (!is_string($bytes)) {
                throw new \Plasm\Exception\InvalidArgumentException(sprintf('output file %s: expected its bytes as a string, got %s', $path, get_debug_type($bytes)));
            }
            $given[(string) $path] = $bytes;
        }
        $paths = array_map('strval', array_unique([...array_keys($signed), ...array_keys($given)]));
        sort($paths, SORT_STRING);
        foreach ($paths as $path) {
            if (!array_key_exists($path, $given)) {
                throw new VerificationException('hash_mismatch', sprintf('output file %s is missing', $path));
            }
            if (!array_key_exists($path, $signed)) {
                throw new VerificationException('hash_mismatch', sprintf('output file %s is not in the receipt', $path));
            }
            $bytes = $given[$path];
            if (strlen($bytes) !== $signed[$path]['size'] || hash('sha256', $bytes) !== $signed[$path]['sha256']) {
                throw new VerificationException('hash_mismatch', sprintf('output file %s is not the one the receipt signs', $path));
            }
        }
    }

    private static function malformed(string $message): never
    {
        throw new VerificationException('malformed', 'the receipt body: ' . $message);
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
            'outputs' => is_array($value),
        };
        if (!$ok) {
            throw new VerificationException('malformed', sprintf('the receipt body field "%s" is not of type %s', $name, $type));
        }
        return match ($base) {
            'bytes32' => $value->hex(),
            'bytes16' => $value->bytes,
            'limits' => self::record($value, self::LIMIT_FIELDS),
            'engine' => self::record($value, self::ENGINE_FIELDS),
            'outputs' => self::outputFiles($value),
            default => $value,
        };
    }

    /**
     * @param list<mixed> $list
     * @return list<array{path: string, size: int, sha256: string}>
     */
    private static function outputFiles(array $list): array
    {
        $files = [];
        $previous = null;
        foreach ($list as $i => $entry) {
            if (!$entry instanceof Map) {
                self::malformed("outputs[$i] is not a map");
            }
            self::requireExactKeys($entry, self::OUTPUT_FIELDS, "body outputs[$i]");
            $path = $entry->get('path');
            $size = $entry->get('size');
            $sha256 = $entry->get('sha256');
            if (!is_string($path) || !str_starts_with($path, '/output/')) {
                self::malformed(sprintf('outputs[%d].path must be a path under /output/, got %s', $i, json_encode($path)));
            }
            if (!is_int($size) || $size < 0) {
                self::malformed("outputs[$i].size must be a non-negative integer");
            }
            if (!$sha256 instanceof ByteString || $sha256->length() !== 32) {
                self::malformed("outputs[$i].sha256 must be 32 bytes");
            }
            if ($previous !== null && strcmp($previous, $path) >= 0) {
                self::malformed('outputs must be sorted by path, each path once');
            }
            $previous = $path;
            $files[] = ['path' => $path, 'size' => $size, 'sha256' => $sha256->hex()];
        }
        return $files;
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
