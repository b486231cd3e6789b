<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * The node answered with an error body `{"error": {"code", "message"}}`: it understood the
 * request and refused it (bad manifest, unknown job, too large, overloaded...).
 * `getErrorCode()` is the node's machine-readable code; `getHttpStatus()` the HTTP status.
 */
class ApiException extends PlasmException
{
    /** @param array<string, mixed> $details */
    public function __construct(
        private readonly string $errorCode,
        string $message,
        private readonly int $httpStatus,
        private readonly array $details = [],
    ) {
        parent::__construct(sprintf('node refused the request (%s, HTTP %d): %s', $errorCode, $httpStatus, $message));
    }

    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    public function getHttpStatus(): int
    {
        return $this->httpStatus;
    }

    /** @return array<string, mixed> the whole `error` object as the node sent it */
    public function getDetails(): array
    {
        return $this->details;
    }
}
