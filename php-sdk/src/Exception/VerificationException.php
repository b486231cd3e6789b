<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * A receipt did not verify: it is malformed, its signature is wrong, its key does not belong
 * to the executor it names, or it does not match the module or output the client holds.
 * `getReason()` is one of the reason codes the Python verifier uses (`malformed`,
 * `bad_signature`, `key_mismatch`, `hash_mismatch`, `unsupported_version`, `result_mismatch`, ...). Never trust the result it came with.
 */
class VerificationException extends PlasmException
{
    public function __construct(private readonly string $reason, private readonly string $detail, ?\Throwable $previous = null)
    {
        $message = $detail;
        parent::__construct(sprintf('receipt rejected (%s): %s', $reason, $message), 0, $previous);
    }

    public function getReason(): string
    {
        return $this->reason;
    }

    /**
     * The message without the "receipt rejected (reason): " lead — for `result_mismatch`
     * exactly `<field>: result says X, receipt says Y`, as `plasmd verify` prints it.
     */
    public function getDetail(): string
    {
        return $this->detail;
    }
}
