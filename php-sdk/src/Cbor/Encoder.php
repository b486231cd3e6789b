<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Map;

/**
 * Canonical CBOR encoding for building test inputs: the SDK only decodes, so this lives with
 * the tests. Maps are written with keys sorted length-first then bytewise, as cbor2's
 * canonical mode does for text keys. Raw bytes can be spliced in with RawCbor.
 */
final class CborEncoder
{
    public static function encode(mixed $value): string
    {
        return match (true) {
            $value instanceof RawCbor => $value->bytes,
            is_int($value) => $value >= 0 ? self::head(0, $value) : self::head(1, -1 - $value),
            is_string($value) => self::head(3, strlen($value)) . $value,
            $value instanceof ByteString => self::head(2, $value->length()) . $value->bytes,
            is_bool($value) => $value ? "\xf5" : "\xf4",
            $value === null => "\xf6",
            $value instanceof Map => self::map(iterator_to_array($value)),
            is_array($value) && array_is_list($value) => self::head(4, count($value)) . implode('', array_map([self::class, 'encode'], $value)),
            is_array($value) => self::map($value),
            default => throw new \InvalidArgumentException('cannot encode ' . get_debug_type($value)),
        };
    }

    public static function head(int $major, int $argument): string
    {
        $type = $major << 5;
        return match (true) {
            $argument < 24 => chr($type | $argument),
            $argument < 0x100 => chr($type | 24) . chr($argument),
            $argument < 0x10000 => chr($type | 25) . pack('n', $argument),
            $argument < 0x100000000 => chr($type | 26) . pack('N', $argument),
            default => chr($type | 27) . pack('J', $argument),
        };
    }

    /** @param array<string|int, mixed> $entries */
    private static function map(array $entries): string
    {
        $keys = array_map('strval', array_keys($entries));
        usort($keys, static fn (string $a, string $b): int => [strlen($a), $a] <=> [strlen($b), $b]);
        $out = self::head(5, count($keys));
        foreach ($keys as $key) {
            $out .= self::encode($key) . self::encode($entries[$key]);
        }
        return $out;
    }
}
