<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * The node accepted the job but it ended without a result: status `failed` (e.g. no peer
 * ran it — `no_executor` — or the module was missing), `cancelled`, `interrupted` or
 * `rejected`. For a job placed on other peers, getAttempts() says which peers were asked
 * and what each answered (`limits_exceeded`, `busy`, `unreachable`, ...).
 *
 * It is an ApiException (getErrorCode() is the job's error code, getHttpStatus() the status
 * of the answer that reported it), so code catching ApiException keeps working.
 */
final class JobFailedException extends ApiException
{
    /** @param array<string, mixed> $error the job's `error` object, empty when it has none */
    public function __construct(
        private readonly string $jobId,
        private readonly string $jobStatus,
        array $error,
        int $httpStatus = 200,
    ) {
        $code = is_string($error['code'] ?? null) ? $error['code'] : 'job_' . $jobStatus;
        $reason = is_string($error['message'] ?? null) ? $error['message'] : 'it ended without a result';
        parent::__construct($code, $reason, $httpStatus, $error);
        $this->message = sprintf('job %s %s (%s): %s', $jobId, $jobStatus, $code, $reason);
    }

    public function getJobId(): string
    {
        return $this->jobId;
    }

    /** failed, cancelled, interrupted or rejected */
    public function getJobStatus(): string
    {
        return $this->jobStatus;
    }

    /** @return list<array{peer_id: string, result: string}> the peers asked to run the job, in order */
    public function getAttempts(): array
    {
        return self::attemptsOf($this->getDetails());
    }

    /**
     * The `attempts` of a job's error object, malformed entries left out.
     *
     * @param array<string, mixed>|null $error
     * @return list<array{peer_id: string, result: string}>
     */
    public static function attemptsOf(?array $error): array
    {
        $attempts = [];
        foreach (is_array($error['attempts'] ?? null) ? $error['attempts'] : [] as $attempt) {
            if (is_array($attempt) && is_string($attempt['peer_id'] ?? null) && is_string($attempt['result'] ?? null)) {
                $attempts[] = ['peer_id' => $attempt['peer_id'], 'result' => $attempt['result']];
            }
        }
        return $attempts;
    }
}
