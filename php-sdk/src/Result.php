<?php

declare(strict_types=1);

namespace Plasm;

use Plasm\Exception\PlasmException;
use Plasm\Exception\VerificationException;

/**
 * A finished job as the node reports it (schemas/job-result.schema.json). Everything here is
 * the node's claim until verifyReceipt() (or verifyOutputs()) has checked it against the
 * signed receipt. Only signed bytes are trusted: after the signature, every field of the
 * result that the receipt covers — job_id, executor, module_sha256, outcome (kind, exit
 * code, message), fuel_consumed, wall_time_us, the stdout and stderr bytes and their _text
 * forms, the truncation flags and the output file list — is compared with the signed body,
 * as protocol/verification.py does, and the first that differs throws VerificationException
 * `result_mismatch` with the detail `<field>: result says X, receipt says Y`. Once that
 * passed, the public properties are the ones the executor signed.
 *
 * The bytes of output files are not in the result; fetch or copy them and check them with
 * verifyOutputs([guest path => bytes]).
 */
final class Result
{
    private const SHOW_MAX = 200;

    /**
     * @param list<array{path: string, size: int, sha256: string}> $outputs files under /output, sha256 hex
     * @param array<string, mixed> $receipt the receipt JSON form {"cose": base64, "executor", "body"}
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
        public readonly array $outputs,
        public readonly bool $outputsTruncated,
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
        if (!is_array($outcome) || !is_string($outcome['kind'] ?? null) || !is_array($receipt)) {
            throw new PlasmException('the node sent a job result without an outcome or a receipt; is the daemon a matching version?');
        }
        return new self(
            self::text($json, 'job_id'),
            self::text($json, 'status'),
            $outcome['kind'],
            is_int($outcome['exit_code'] ?? null) ? $outcome['exit_code'] : null,
            is_string($outcome['message'] ?? null) ? $outcome['message'] : null,
            self::base64($json, 'stdout'),
            self::base64($json, 'stderr'),
            ($json['stdout_truncated'] ?? false) === true,
            ($json['stderr_truncated'] ?? false) === true,
            self::outputList($json['outputs'] ?? []),
            ($json['outputs_truncated'] ?? false) === true,
            is_int($json['fuel_consumed'] ?? null) ? $json['fuel_consumed'] : 0,
            is_int($json['wall_time_us'] ?? null) ? $json['wall_time_us'] : 0,
            self::text($json, 'module_sha256'),
            self::text($json, 'executor'),
            $receipt,
            $json,
        );
    }

    /**
     * The earlier run that answered this job without running it (the manifest's reuse):
     * ['job_id' => ..., 'executor' => ...] as its receipt signs them, checked by
     * verifyReceipt(); null for a job that ran. $jobId stays this job's id.
     *
     * @return array{job_id: string, executor: string}|null
     */
    public function reused(): ?array
    {
        $reused = $this->raw['reused'] ?? null;
        if (!is_array($reused) || !is_string($reused['job_id'] ?? null) || !is_string($reused['executor'] ?? null)) {
            return null;
        }
        return ['job_id' => $reused['job_id'], 'executor' => $reused['executor']];
    }

    /** True when the guest ran to completion with exit status 0. */
    public function succeeded(): bool
    {
        return $this->outcomeKind === 'ok';
    }

    /**
     * The files the job left under /output, sorted by path, as the receipt lists them
     * (path, size, sha256 hex); their bytes travel apart (verifyOutputs()).
     *
     * @return list<array{path: string, size: int, sha256: string}>
     */
    public function outputs(): array
    {
        return $this->outputs;
    }

    /** stdout as text for people (invalid UTF-8 replaced); $stdout holds the exact bytes. */
    public function stdoutText(): string
    {
        return is_string($this->raw['stdout_text'] ?? null) ? $this->raw['stdout_text'] : self::utf8Replace($this->stdout);
    }

    public function stderrText(): string
    {
        return is_string($this->raw['stderr_text'] ?? null) ? $this->raw['stderr_text'] : self::utf8Replace($this->stderr);
    }

    /** The receipt's COSE_Sign1 bytes (`receipt.cose`, base64-decoded). */
    public function receiptCose(): string
    {
        $cose = is_string($this->receipt['cose'] ?? null) ? base64_decode($this->receipt['cose'], true) : false;
        if ($cose === false) {
            throw new VerificationException('malformed', "the result's receipt has no valid base64 'cose'");
        }
        return $cose;
    }

    /** @deprecated the receipt is a COSE_Sign1 now: use receiptCose() (this returns the same bytes) */
    public function receiptEnvelope(): string
    {
        return $this->receiptCose();
    }

    /**
     * Verify the receipt against what the client sent — the manifest's module and input, or
     * just a module hash — and every field of this result against the receipt; throws
     * VerificationException, returns the verified Receipt.
     *
     * @param Manifest|string $sent the manifest submitted, or the hex sha256 of the module
     * @param string|null $nonce the raw nonce, when the client chose one
     * @param string|null $executor the peer ID the client expects to have run the job
     * @param array<string, string>|null $outputs output files fetched, guest path => bytes:
     *        must be exactly the receipt's files (`hash_mismatch` otherwise)
     */
    public function verifyReceipt(Manifest|string $sent, ?string $nonce = null, ?string $executor = null, ?array $outputs = null): Receipt
    {
        return $this->verified(
            moduleSha256: $sent instanceof Manifest ? $sent->moduleSha256() : $sent,
            inputSha256: $sent instanceof Manifest ? $sent->inputSha256() : null,
            nonce: $nonce,
            executor: $executor,
            outputs: $outputs,
        );
    }

    /**
     * Verify output file bytes the caller fetched or saved (guest path => bytes, e.g.
     * "/output/result.txt" => ...) against the receipt: every file it lists, no other, each
     * with the signed size and sha256 (`hash_mismatch` otherwise). Also verifies the
     * receipt's signature and this result's fields, as verifyReceipt() does.
     *
     * @param array<string, string> $files
     */
    public function verifyOutputs(array $files): Receipt
    {
        return $this->verified(outputs: $files);
    }

    private function verified(mixed ...$expectations): Receipt
    {
        $receipt = Receipt::verifyJson($this->receipt, ...$expectations);
        $this->checkResultFields($receipt);
        if ($this->quorum() !== null) {
            self::checkQuorum($this->quorum(), $receipt);
        }
        return $receipt;
    }

    /**
     * A quorum job's `quorum` (placement replicas/quorum): {"agreed", "quorum", "agreeing",
     * "dissenting", "receipts"}; null for any other job. verifyReceipt() checks it.
     *
     * @return array<string, mixed>|null
     */
    public function quorum(): ?array
    {
        return is_array($this->raw['quorum'] ?? null) ? $this->raw['quorum'] : null;
    }

    /**
     * Check a saved quorum as protocol/quorum.py check_quorum does: every receipt verifies,
     * no executor signed two, `agreeing` is exactly a group of at least `quorum` receipts with
     * equal agreement keys, and $own (the result's receipt, when given) is one of them.
     * Throws VerificationException (`no_quorum`, `duplicate_executor`, `quorum_mismatch`,
     * `malformed`, or a receipt's own reason); returns how many agree.
     *
     * @param array<string, mixed> $quorum
     */
    public static function checkQuorum(array $quorum, ?Receipt $own = null): int
    {
        $wanted = $quorum['quorum'] ?? null;
        $receipts = $quorum['receipts'] ?? null;
        $agreeing = $quorum['agreeing'] ?? null;
        if (!is_int($wanted) || $wanted < 1 || !is_array($receipts) || $receipts === [] || !is_array($agreeing)) {
            throw new VerificationException('malformed', 'a quorum needs a positive quorum, receipts and agreeing');
        }
        $keys = [];
        foreach (array_values($receipts) as $i => $json) {
            if (!is_array($json)) {
                throw new VerificationException('malformed', "quorum receipt $i is not a receipt object");
            }
            try {
                $receipt = Receipt::verifyJson($json);
            } catch (VerificationException $e) {
                throw new VerificationException($e->getReason(), "quorum receipt $i: " . $e->getDetail(), $e);
            }
            if (isset($keys[$receipt->executor])) {
                throw new VerificationException('duplicate_executor', "{$receipt->executor} signed two of the quorum's receipts");
            }
            $keys[$receipt->executor] = $receipt->agreementKey();
        }
        $groups = [];
        foreach ($keys as $executor => $key) {
            $groups[$key][] = (string) $executor;
        }
        $best = max(array_map('count', $groups));
        if ($best < $wanted) {
            throw new VerificationException('no_quorum', sprintf('at most %d of %d receipts agree; the quorum is %d', $best, count($keys), $wanted));
        }
        $named = array_values(array_unique(array_map('strval', $agreeing)));
        sort($named);
        $matches = false;
        foreach ($groups as $group) {
            sort($group);
            $matches = $matches || (count($group) >= $wanted && $group === $named);
        }
        if (!$matches) {
            throw new VerificationException('quorum_mismatch', 'quorum.agreeing is not a group of agreeing receipts');
        }
        if ($own !== null && (!in_array($own->executor, $named, true) || $keys[$own->executor] !== $own->agreementKey())) {
            throw new VerificationException('quorum_mismatch', "the result's receipt is not one of the agreeing");
        }
        return count($named);
    }

    /** Every field of this result the receipt covers says what the receipt says (protocol/verification.py). */
    private function checkResultFields(Receipt $receipt): void
    {
        $saved = $this->raw;
        $outcome = is_array($saved['outcome'] ?? null) ? $saved['outcome'] : [];
        // A reused result is this node's job answered with an earlier run's receipt: its
        // `reused` names that run, which is what the receipt signs.
        $reused = is_array($saved['reused'] ?? null) ? $saved['reused'] : null;
        $pairs = [
            $reused !== null
                ? ['reused.job_id', $reused['job_id'] ?? null, $receipt->jobId]
                : ['job_id', $saved['job_id'] ?? null, $receipt->jobId],
            ['executor', $saved['executor'] ?? null, $receipt->executor],
            ['module_sha256', $saved['module_sha256'] ?? null, $receipt->moduleSha256],
            ['outcome.kind', $outcome['kind'] ?? null, $receipt->outcome],
            ['outcome.exit_code', $outcome['exit_code'] ?? null, $receipt->exitCode],
            ['outcome.message', $outcome['message'] ?? null, $receipt->message],
            ['fuel_consumed', $saved['fuel_consumed'] ?? null, $receipt->fuelConsumed],
            ['wall_time_us', $saved['wall_time_us'] ?? null, $receipt->wallTimeUs],
            ['stdout_truncated', $saved['stdout_truncated'] ?? null, $receipt->stdoutTruncated],
            ['stderr_truncated', $saved['stderr_truncated'] ?? null, $receipt->stderrTruncated],
            ['outputs_truncated', $saved['outputs_truncated'] ?? null, $receipt->outputsTruncated],
            ['outputs', $saved['outputs'] ?? null, $receipt->outputs],
        ];
        if ($reused !== null) {
            $pairs[] = ['reused.executor', $reused['executor'] ?? null, $receipt->executor];
        }
        foreach (['stdout' => $this->stdout, 'stderr' => $this->stderr] as $name => $bytes) {
            $pairs[] = ["{$name}_text", $saved["{$name}_text"] ?? null, self::utf8Replace($bytes)];
            $pairs[] = ["$name sha256", hash('sha256', $bytes), $name === 'stdout' ? $receipt->stdoutSha256 : $receipt->stderrSha256];
        }
        foreach ($pairs as [$field, $says, $signed]) {
            if (!self::same($says, $signed)) {
                throw new VerificationException('result_mismatch', sprintf('%s: result says %s, receipt says %s', $field, self::show($says), self::show($signed)));
            }
        }
    }

    /** Equal values of the same JSON types; maps compare regardless of key order. */
    private static function same(mixed $a, mixed $b): bool
    {
        if (!is_array($a) || !is_array($b)) {
            return $a === $b;
        }
        if (count($a) !== count($b) || array_is_list($a) !== array_is_list($b)) {
            return false;
        }
        foreach ($a as $key => $value) {
            if (!array_key_exists($key, $b) || !self::same($value, $b[$key])) {
                return false;
            }
        }
        return true;
    }

    private static function show(mixed $value): string
    {
        if ($value === null) {
            return 'nothing';
        }
        $text = json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION | JSON_INVALID_UTF8_SUBSTITUTE);
        $text = $text === false ? get_debug_type($value) : $text;
        // Characters, not bytes, as Python counts them (no mbstring needed).
        if (preg_match('/\A.{' . (self::SHOW_MAX + 1) . '}/su', $text) !== 1) {
            return $text;
        }
        preg_match('/\A.{' . (self::SHOW_MAX - 3) . '}/su', $text, $head);
        return $head[0] . '...';
    }

    /**
     * $bytes decoded as UTF-8 with U+FFFD for each maximal invalid subpart (Unicode §3.9), as
     * Python's bytes.decode("utf-8", errors="replace") does: the daemon's stdout_text.
     */
    public static function utf8Replace(string $bytes): string
    {
        if (preg_match('//u', $bytes) === 1) {
            return $bytes;
        }
        $out = '';
        $n = strlen($bytes);
        $i = 0;
        while ($i < $n) {
            $b = ord($bytes[$i]);
            if ($b < 0x80) {
                $out .= $bytes[$i++];
                continue;
            }
            [$length, $low, $high] = match (true) {
                $b >= 0xc2 && $b <= 0xdf => [2, 0x80, 0xbf],
                $b === 0xe0 => [3, 0xa0, 0xbf],
                $b === 0xed => [3, 0x80, 0x9f],
                $b >= 0xe1 && $b <= 0xef => [3, 0x80, 0xbf],
                $b === 0xf0 => [4, 0x90, 0xbf],
                $b >= 0xf1 && $b <= 0xf3 => [4, 0x80, 0xbf],
                $b === 0xf4 => [4, 0x80, 0x8f],
                default => [0, 0, 0], // never a lead byte: a continuation, C0, C1, F5..FF
            };
            if ($length === 0) {
                $out .= "\u{FFFD}";
                $i++;
                continue;
            }
            $j = 1;
            while ($j < $length && $i + $j < $n) {
                $c = ord($bytes[$i + $j]);
                if ($c < ($j === 1 ? $low : 0x80) || $c > ($j === 1 ? $high : 0xbf)) {
                    break;
                }
                $j++;
            }
            $out .= $j === $length ? substr($bytes, $i, $length) : "\u{FFFD}";
            $i += $j;
        }
        return $out;
    }

    /** @return list<array{path: string, size: int, sha256: string}> */
    private static function outputList(mixed $outputs): array
    {
        $list = [];
        foreach (is_array($outputs) ? $outputs : [] as $file) {
            if (is_array($file) && is_string($file['path'] ?? null) && is_int($file['size'] ?? null) && is_string($file['sha256'] ?? null)) {
                $list[] = ['path' => $file['path'], 'size' => $file['size'], 'sha256' => $file['sha256']];
            }
        }
        return $list;
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
