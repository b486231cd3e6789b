<?php

declare(strict_types=1);

namespace Plasm;

use Plasm\Exception\JobFailedException;

/**
 * A job as `GET /v1/jobs/{id}` describes it: its id and status, and its Result once it
 * finished. `error` holds the node's `{"code", "message"}` when the job failed before it
 * produced a result (no peer accepted it, the module was missing, ...); for a job placed on
 * other peers its `attempts` say which peers were asked and what each answered (attempts()).
 */
final class Job
{
    /** `disputed`: a quorum job whose replicas did not agree (its error holds every receipt: quorum()). */
    public const STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted', 'rejected', 'disputed'];
    public const FINISHED_STATUSES = ['done', 'failed', 'cancelled', 'interrupted', 'rejected', 'disputed'];

    /**
     * @param array<string, mixed>|null $error
     * @param array<string, mixed> $raw
     */
    public function __construct(
        public readonly string $jobId,
        public readonly string $status,
        public readonly ?Result $result = null,
        public readonly ?array $error = null,
        public readonly array $raw = [],
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromArray(array $json): self
    {
        if (is_array($json['outcome'] ?? null) && isset($json['receipt'])) {
            // A bare job-result object (POST /v1/jobs?wait=... that finished in time); a job
            // description has `outcome` too, but only as the outcome kind's name.
            $result = Result::fromArray($json);
            return new self($result->jobId, $result->status, $result, null, $json);
        }
        $result = is_array($json['result'] ?? null) ? Result::fromArray($json['result']) : null;
        return new self(
            (string) ($json['job_id'] ?? ''),
            (string) ($json['status'] ?? 'unknown'),
            $result,
            is_array($json['error'] ?? null) ? $json['error'] : null,
            $json,
        );
    }

    /**
     * The peers a failed remote job was offered to and what each answered, in order;
     * empty for a job that has no error or ran on the node itself.
     *
     * @return list<array{peer_id: string, result: string}>
     */
    public function attempts(): array
    {
        return JobFailedException::attemptsOf($this->error);
    }

    /**
     * The quorum of a quorum job: the result's (agreed) or, for a `disputed` job, the
     * error's, with every replica's receipt; null for other jobs. Result::checkQuorum()
     * checks it offline.
     *
     * @return array<string, mixed>|null
     */
    public function quorum(): ?array
    {
        if ($this->result !== null) {
            return $this->result->quorum();
        }
        return is_array($this->error['quorum'] ?? null) ? $this->error['quorum'] : null;
    }

    public function isFinished(): bool
    {
        return $this->result !== null || in_array($this->status, self::FINISHED_STATUSES, true);
    }
}
