<?php

declare(strict_types=1);

namespace Plasm\Cbor;

use Plasm\Exception\DecodeException;

/*
 * Theory of operation: a strict, allocation-safe decoder for the CBOR subset Plasm receipts
 * use — unsigned and negative integers, byte strings, text strings, arrays, maps with text
 * keys, true, false and null. Everything else is refused rather than guessed at: floats,
 * tags, `undefined` and other simple values, indefinite lengths, reserved additional-info
 * values, invalid UTF-8, duplicate map keys, nesting deeper than the limit, integers PHP
 * cannot hold, and any byte left over after the single top-level item. Every declared length
 * is checked against the bytes that remain before anything is read or allocated, so a
 * hostile header cannot make the decoder reserve memory. Shortest-form encoding is not
 * demanded here (the Python decoder does not demand it either); signatures are checked over
 * the exact bytes received, and Receipt then demands the canonical form by re-encoding the
 * decoded body with Encoder and comparing bytes, so one receipt has one encoding.
 *
 * Values: ints -> int, text -> string, bytes -> ByteString, arrays -> list, maps -> Map,
 * true/false -> bool, null -> null.
 */
final class Decoder
{
    public const DEFAULT_MAX_SIZE = 1 << 20;
    public const DEFAULT_MAX_DEPTH = 32;

    private string $data = '';
    private int $pos = 0;
    private int $end = 0;

    public function __construct(
        private readonly int $maxSize = self::DEFAULT_MAX_SIZE,
        private readonly int $maxDepth = self::DEFAULT_MAX_DEPTH,
    ) {
    }

    /** Decode exactly one item that spans all of $data. */
    public static function decode(string $data, int $maxSize = self::DEFAULT_MAX_SIZE, int $maxDepth = self::DEFAULT_MAX_DEPTH): mixed
    {
        return (new self($maxSize, $maxDepth))->decodeAll($data);
    }

    public function decodeAll(string $data): mixed
    {
        $size = strlen($data);
        if ($size > $this->maxSize) {
            throw new DecodeException(sprintf('cbor input is %d bytes, more than the %d allowed', $size, $this->maxSize));
        }
        if ($size === 0) {
            throw new DecodeException('cbor input is empty');
        }
        $this->data = $data;
        $this->pos = 0;
        $this->end = $size;
        $value = $this->item(0);
        if ($this->pos !== $this->end) {
            throw new DecodeException(sprintf('%d trailing bytes after the cbor item at offset %d', $this->end - $this->pos, $this->pos));
        }
        return $value;
    }

    private function item(int $depth): mixed
    {
        if ($depth > $this->maxDepth) {
            throw new DecodeException(sprintf('cbor nesting deeper than %d at offset %d', $this->maxDepth, $this->pos));
        }
        $offset = $this->pos;
        $initial = ord($this->take(1));
        $major = $initial >> 5;
        $info = $initial & 0x1f;

        if ($major === 7) {
            return match ($info) {
                20 => false,
                21 => true,
                22 => null,
                default => throw new DecodeException(sprintf('unsupported cbor simple value or float (0x%02x) at offset %d', $initial, $offset)),
            };
        }
        if ($info === 31) {
            throw new DecodeException(sprintf('indefinite-length cbor item at offset %d is not allowed', $offset));
        }
        if ($major === 6) {
            throw new DecodeException(sprintf('cbor tags are not allowed (offset %d)', $offset));
        }
        $argument = $this->argument($info, $offset);

        switch ($major) {
            case 0:
                return $argument;
            case 1:
                // -1 - n; n <= PHP_INT_MAX always holds here, so -1 - n >= PHP_INT_MIN.
                return -1 - $argument;
            case 2:
                return new ByteString($this->take($argument));
            case 3:
                $text = $this->take($argument);
                if (preg_match('//u', $text) !== 1) {
                    throw new DecodeException(sprintf('cbor text at offset %d is not valid utf-8', $offset));
                }
                return $text;
            case 4:
                // Every item takes at least one byte: refuse counts the input cannot hold.
                $this->requireRemaining($argument, 1, $offset);
                $list = [];
                for ($i = 0; $i < $argument; $i++) {
                    $list[] = $this->item($depth + 1);
                }
                return $list;
            default: // 5: map
                $this->requireRemaining($argument, 2, $offset);
                $map = new Map();
                for ($i = 0; $i < $argument; $i++) {
                    $keyOffset = $this->pos;
                    $key = $this->item($depth + 1);
                    if (!is_string($key)) {
                        throw new DecodeException(sprintf('cbor map key at offset %d is not text', $keyOffset));
                    }
                    if ($map->has($key)) {
                        throw new DecodeException(sprintf('duplicate cbor map key "%s" at offset %d', $key, $keyOffset));
                    }
                    $map->set($key, $this->item($depth + 1));
                }
                return $map;
        }
    }

    private function argument(int $info, int $offset): int
    {
        if ($info < 24) {
            return $info;
        }
        $value = match ($info) {
            24 => ord($this->take(1)),
            25 => unpack('n', $this->take(2))[1],
            26 => unpack('N', $this->take(4))[1],
            27 => $this->uint64($offset),
            default => throw new DecodeException(sprintf('reserved cbor additional information %d at offset %d', $info, $offset)),
        };
        return $value;
    }

    private function uint64(int $offset): int
    {
        $parts = unpack('Nhigh/Nlow', $this->take(8));
        if ($parts['high'] > 0x7fffffff) {
            throw new DecodeException(sprintf('cbor integer at offset %d does not fit in a signed 64-bit integer', $offset));
        }
        return ($parts['high'] << 32) | $parts['low'];
    }

    private function requireRemaining(int $count, int $minBytesEach, int $offset): void
    {
        if ($count > intdiv($this->end - $this->pos, $minBytesEach)) {
            throw new DecodeException(sprintf('cbor item at offset %d declares %d entries but only %d bytes remain', $offset, $count, $this->end - $this->pos));
        }
    }

    private function take(int $length): string
    {
        if ($length > $this->end - $this->pos) {
            throw new DecodeException(sprintf('cbor input ends early: %d bytes wanted at offset %d, %d remain', $length, $this->pos, $this->end - $this->pos));
        }
        $bytes = substr($this->data, $this->pos, $length);
        $this->pos += $length;
        return $bytes;
    }
}
