<?php

declare(strict_types=1);

namespace Plasm;

use Plasm\Exception\PlasmException;
use Plasm\Exception\VerificationException;

/**
 * A finished job as the node reports it (schemas/job-result.schema.json). Everything here is
 * the node's claim until verifyReceipt() has checked it against the signed receipt:
 * after that call the outcome, exit code, fuel and output are the ones the executor signed.
 */
final class Result
{
    /**
     * @param array<string, mixed> $receipt the receipt JSON form, `envelope` is base64
     * @param array<string, mixed> $raw the whole job-result object
     */
    private function __construct(
        public readonly string $jobId,
        public readonly string $status,
        public readonly string $outcomeKind,
        public readonly ?int $exitCode,
        public readonly ?string $message,
        public readonly string $stdout,
        public readonly string $stderr,
        public readonly bool $stdoutTruncated,
        public readonly bool $stderrTruncated,
        public readonly int $fuelConsumed,
        public readonly int $wallTimeUs,
        public readonly string $moduleSha256,
        public readonly string $executor,
        public readonly array $receipt,
        public readonly array $raw,
    ) {
    }

    /** @param array<string, mixed> $json a decoded job-result object */
    public static function fromArray(array $json): self
    {
        $outcome = $json['outcome'] ?? null;
        $receipt = $json['receipt'] ?? null;
        if (!is_array($outcome) || !is_string($outcome['kind'] ?? null) || !is_array($receipt) || !is_string($receipt['envelope'] ?? null)) {
            throw new PlasmException('the node sent a job result without an outcome or a receipt; is the daemon a matching version?');
        }
        return new self(
            self::text($json, 'job_id'),
            self::text($json, 'status'),
            $outcome['kind'],
            isset($outcome['exit_code']) ? (int) $outcome['exit_code'] : null,
            isset($outcome['message']) ? (string) $outcome['message'] : null,
            self::base64($json, 'stdout'),
            self::base64($json, 'stderr'),
            (bool) ($json['stdout_truncated'] ?? false),
            (bool) ($json['stderr_truncated'] ?? false),
            (int) ($json['fuel_consumed'] ?? 0),
            (int) ($json['wall_time_us'] ?? 0),
            self::text($json, 'module_sha256'),
            self::text($json, 'executor'),
            $receipt,
            $json,
        );
    }

    /** True when the guest ran to completion with exit status 0. */
    public function succeeded(): bool
    {
        return $this->outcomeKind === 'ok';
    }

    /** stdout as text for people (invalid UTF-8 replaced); $stdout holds the exact bytes. */
    public function stdoutText(): string
    {
        return is_string($this->raw['stdout_text'] ?? null) ? $this->raw['stdout_text'] : $this->stdout;
    }

    public function stderrText(): string
    {
        return is_string($this->raw['stderr_text'] ?? null) ? $this->raw['stderr_text'] : $this->stderr;
    }

    /** The raw CBOR envelope bytes of the receipt. */
    public function receiptEnvelope(): string
    {
        $envelope = base64_decode((string) $this->receipt['envelope'], true);
        if ($envelope === false) {
            throw new VerificationException('malformed', 'the receipt envelope is not valid base64');
        }
        return $envelope;
    }

    /**
     * Verify the receipt against what the client sent — the manifest's module and input, or
     * just a module hash — and against this result's own output and claims; throws
     * VerificationException, returns the verified Receipt.
     *
     * @param Manifest|string $sent the manifest submitted, or the hex sha256 of the module
     * @param string|null $nonce the raw nonce, when the client chose one
     */
    public function verifyReceipt(Manifest|string $sent, ?string $nonce = null): Receipt
    {
        $receipt = Receipt::verify(
            $this->receiptEnvelope(),
            moduleSha256: $sent instanceof Manifest ? $sent->moduleSha256() : $sent,
            inputSha256: $sent instanceof Manifest ? $sent->inputSha256() : null,
            stdout: $this->stdout,
            stderr: $this->stderr,
            executor: $this->executor,
            jobId: $this->jobId,
            nonce: $nonce,
        );
        $claims = [
            'outcome' => [$this->outcomeKind, $receipt->outcome],
            'exit_code' => [$this->exitCode, $receipt->exitCode],
            'fuel_consumed' => [$this->fuelConsumed, $receipt->fuelConsumed],
            'module_sha256' => [strtolower($this->moduleSha256), $receipt->moduleSha256],
            'stdout_truncated' => [$this->stdoutTruncated, $receipt->stdoutTruncated],
            'stderr_truncated' => [$this->stderrTruncated, $receipt->stderrTruncated],
        ];
        foreach ($claims as $field => [$claimed, $signed]) {
            if ($claimed !== $signed) {
                throw new VerificationException('result_mismatch', sprintf('the job result says %s = %s but the signed receipt says %s', $field, json_encode($claimed), json_encode($signed)));
            }
        }
        return $receipt;
    }

    /** @param array<string, mixed> $json */
    private static function text(array $json, string $key): string
    {
        if (!is_string($json[$key] ?? null)) {
            throw new PlasmException(sprintf('the node sent a job result without "%s"', $key));
        }
        return $json[$key];
    }

    /** @param array<string, mixed> $json */
    private static function base64(array $json, string $key): string
    {
        $bytes = base64_decode(self::text($json, $key), true);
        if ($bytes === false) {
            throw new PlasmException(sprintf('the job result field "%s" is not valid base64', $key));
        }
        return $bytes;
    }
}
