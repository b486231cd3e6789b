<?php

declare(strict_types=1);

namespace Plasm\Cbor;

/**
 * A CBOR byte string (major type 2). PHP strings carry both text and bytes, so the decoder
 * wraps bytes in this class to keep the two apart: a receipt field that must be bytes is
 * refused when it arrives as text, and the other way round.
 */
final class ByteString
{
    public function __construct(public readonly string $bytes)
    {
    }

    public function length(): int
    {
        return strlen($this->bytes);
    }

    public function hex(): string
    {
        return bin2hex($this->bytes);
    }
}
