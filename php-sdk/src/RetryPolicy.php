<?php

declare(strict_types=1);

namespace Plasm;

/**
 * When and how long to wait before sending a request again. The node answers 429 (too many
 * requests) and 503 (overloaded, or shutting down) before it accepted the request, so both
 * are safe to retry, for any method. Delays grow exponentially with full jitter, capped;
 * a Retry-After header in seconds is honoured up to the cap.
 */
final class RetryPolicy
{
    public const RETRY_STATUSES = [429, 503];

    public function __construct(
        public readonly int $maxAttempts = 4,
        public readonly float $baseDelaySeconds = 0.1,
        public readonly float $maxDelaySeconds = 2.0,
    ) {
        if ($maxAttempts < 1 || $baseDelaySeconds < 0 || $maxDelaySeconds < $baseDelaySeconds) {
            throw new \Plasm\Exception\InvalidArgumentException('a retry policy needs maxAttempts >= 1 and 0 <= baseDelaySeconds <= maxDelaySeconds');
        }
    }

    public static function never(): self
    {
        return new self(1, 0.0, 0.0);
    }

    /** @param int $attempt the attempt that just failed, from 1 */
    public function shouldRetry(int $status, int $attempt): bool
    {
        return $attempt < $this->maxAttempts && in_array($status, self::RETRY_STATUSES, true);
    }

    /** Seconds to sleep after failed attempt number $attempt. */
    public function delaySeconds(int $attempt, ?string $retryAfter = null): float
    {
        if ($retryAfter !== null && preg_match('/\A\d+\z/', trim($retryAfter)) === 1) {
            return min((float) trim($retryAfter), $this->maxDelaySeconds);
        }
        $ceiling = min($this->maxDelaySeconds, $this->baseDelaySeconds * (2 ** ($attempt - 1)));
        return $ceiling * (mt_rand(500, 1000) / 1000);
    }
}
