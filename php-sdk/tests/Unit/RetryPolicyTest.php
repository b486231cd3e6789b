<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\RetryPolicy;
use PHPUnit\Framework\TestCase;

/** @small */
final class RetryPolicyTest extends TestCase
{
    public function test_retries_only_429_and_503(): void
    {
        $policy = new RetryPolicy(maxAttempts: 3);

        self::assertTrue($policy->shouldRetry(429, 1));
        self::assertTrue($policy->shouldRetry(503, 2));
        self::assertFalse($policy->shouldRetry(500, 1));
        self::assertFalse($policy->shouldRetry(400, 1));
    }

    public function test_stops_after_the_last_attempt(): void
    {
        self::assertFalse((new RetryPolicy(maxAttempts: 3))->shouldRetry(503, 3));
        self::assertFalse(RetryPolicy::never()->shouldRetry(503, 1));
    }

    public function test_delays_grow_exponentially_up_to_the_cap(): void
    {
        $policy = new RetryPolicy(maxAttempts: 10, baseDelaySeconds: 0.1, maxDelaySeconds: 1.0);

        foreach ([1 => 0.1, 2 => 0.2, 3 => 0.4, 4 => 0.8, 5 => 1.0, 9 => 1.0] as $attempt => $ceiling) {
            $delay = $policy->delaySeconds($attempt);
            self::assertGreaterThanOrEqual($ceiling / 2, $delay, "attempt $attempt");
            self::assertLessThanOrEqual($ceiling, $delay, "attempt $attempt");
        }
    }

    public function test_honours_retry_after_up_to_the_cap(): void
    {
        $policy = new RetryPolicy(maxAttempts: 3, baseDelaySeconds: 0.1, maxDelaySeconds: 2.0);

        self::assertSame(1.0, $policy->delaySeconds(1, '1'));
        self::assertSame(2.0, $policy->delaySeconds(1, '120'));
    }
}
