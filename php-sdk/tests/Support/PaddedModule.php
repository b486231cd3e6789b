<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

/**
 * A WebAssembly module made big for tests of large transfers, as bench/_modules.py
 * padded() makes it: the module's bytes with one custom section ("pad") of $size random
 * bytes appended — valid wasm with nothing more to compile, which nothing compresses or
 * deduplicates and no node has seen before.
 */
final class PaddedModule
{
    public static function bytes(string $module, int $size): string
    {
        $payload = chr(strlen('pad')) . 'pad' . random_bytes($size);
        return $module . "\x00" . self::leb128(strlen($payload)) . $payload;
    }

    /** Unsigned LEB128, as a section length is encoded. */
    private static function leb128(int $value): string
    {
        $encoded = '';
        do {
            $byte = $value & 0x7F;
            $value >>= 7;
            $encoded .= chr($byte | ($value !== 0 ? 0x80 : 0));
        } while ($value !== 0);
        return $encoded;
    }
}
