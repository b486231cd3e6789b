<?php

declare(strict_types=1);

namespace Plasm\Cbor;

/**
 * Canonical CBOR encoding of the same small data model the Decoder reads: ints, text (PHP
 * strings), bytes (ByteString), lists, maps with text keys (Map or a PHP array with string
 * keys), bool and null. Integers take their shortest form; map keys are sorted length-first,
 * then bytewise, as the Python side's cbor2 canonical mode sorts text keys (RFC 8949 core
 * deterministic encoding for this data model). The SDK uses it to compute a job's input hash
 * the way the executor does, to build the COSE Sig_structure a receipt's signature covers,
 * and to check that a receipt's payload is canonical (re-encoded, it must be the same bytes).
 */
final class Encoder
{
    public static function encode(mixed $value): string
    {
        return match (true) {
            is_int($value) => $value >= 0 ? self::head(0, $value) : self::head(1, -1 - $value),
            is_string($value) => self::text($value),
            $value instanceof ByteString => self::head(2, $value->length()) . $value->bytes,
            is_bool($value) => $value ? "\xf5" : "\xf4",
            $value === null => "\xf6",
            $value instanceof Map => self::map(iterator_to_array($value)),
            is_array($value) && array_is_list($value) => self::head(4, count($value)) . implode('', array_map([self::class, 'encode'], $value)),
            is_array($value) => self::map($value),
            default => throw new \Plasm\Exception\InvalidArgumentException(sprintf('%s cannot be encoded in plasm CBOR (ints, text, ByteString, lists, text-keyed maps, bool, null)', get_debug_type($value))),
        };
    }

    /** The initial byte(s) of an item: major type and its argument in shortest form. */
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

    private static function text(string $value): string
    {
        if (preg_match('//u', $value) !== 1) {
            throw new \Plasm\Exception\InvalidArgumentException('text must be valid UTF-8; wrap binary data in ByteString');
        }
        return self::head(3, strlen($value)) . $value;
    }

    /** @param array<string|int, mixed> $entries */
    private static function map(array $entries): string
    {
        $keys = array_map('strval', array_keys($entries));
        // strcmp, not <=>: PHP compares numeric strings such as "10" and "1e1" as numbers.
        usort($keys, static fn (string $a, string $b): int => strlen($a) <=> strlen($b) ?: strcmp($a, $b));
        $out = self::head(5, count($keys));
        foreach ($keys as $key) {
            $out .= self::text($key) . self::encode($entries[$key]);
        }
        return $out;
    }
}
