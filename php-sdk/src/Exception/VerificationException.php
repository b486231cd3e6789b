<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * A receipt did not verify: it is malformed, its signature is wrong, its key does not belong
 * to the executor it names, or it does not match the module or output the client holds.
 * `getReason()` is one of the reason codes the Python verifier uses (`malformed`,
 * `bad_signature`, `key_mismatch`, `hash_mismatch`, ...). Never trust the result it came with.
 */
class VerificationException extends PlasmException
{
    public function __construct(private readonly string $reason, string $message, ?\Throwable $previous = null)
    {
        parent::__construct(sprintf('receipt rejected (%s): %s', $reason, $message), 0, $previous);
    }

    public function getReason(): string
    {
        return $this->reason;
    }
}
