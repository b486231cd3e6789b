<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

/** Bytes CborEncoder copies as they are, to build inputs an encoder would never produce. */
final class RawCbor
{
    public function __construct(public readonly string $bytes)
    {
    }
}
