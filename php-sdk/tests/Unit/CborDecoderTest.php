<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Decoder;
use Plasm\Cbor\Map;
use Plasm\Exception\DecodeException;
use PHPUnit\Framework\TestCase;

/** @small */
final class CborDecoderTest extends TestCase
{
    /** @return array<string, array{string, mixed}> examples from RFC 8949 appendix A */
    public static function wellFormedItems(): array
    {
        return [
            'zero' => ['00', 0],
            'largest immediate' => ['17', 23],
            'one-byte uint' => ['1818', 24],
            'two-byte uint' => ['190100', 256],
            'four-byte uint' => ['1a000f4240', 1_000_000],
            'eight-byte uint' => ['1b000000e8d4a51000', 1_000_000_000_000],
            'largest int PHP holds' => ['1b7fffffffffffffff', PHP_INT_MAX],
            'minus one' => ['20', -1],
            'minus one thousand' => ['3903e7', -1000],
            'smallest int PHP holds' => ['3b7fffffffffffffff', PHP_INT_MIN],
            'false' => ['f4', false],
            'true' => ['f5', true],
            'null' => ['f6', null],
            'empty text' => ['60', ''],
            'text' => ['6449455446', 'IETF'],
            'utf-8 text' => ['62c3bc', "\u{fc}"],
            'empty array' => ['80', []],
            'nested arrays' => ['8301820203820405', [1, [2, 3], [4, 5]]],
        ];
    }

    /** @dataProvider wellFormedItems */
    public function test_decodes_well_formed_item(string $hex, mixed $expected): void
    {
        self::assertSame($expected, Decoder::decode(hex2bin($hex)));
    }

    public function test_decodes_byte_strings_as_byte_string_objects(): void
    {
        $value = Decoder::decode(hex2bin('4401020304'));

        self::assertInstanceOf(ByteString::class, $value);
        self::assertSame("\x01\x02\x03\x04", $value->bytes);
    }

    public function test_decodes_maps_with_text_keys_in_order(): void
    {
        $value = Decoder::decode(hex2bin('a26161016162820203'));

        self::assertInstanceOf(Map::class, $value);
        self::assertSame(['a', 'b'], $value->keys());
        self::assertSame(1, $value->get('a'));
        self::assertSame([2, 3], $value->get('b'));
    }

    public function test_keeps_numeric_looking_text_keys_as_text(): void
    {
        $value = Decoder::decode(hex2bin('a1613105'));

        self::assertSame(['1'], $value->keys());
        self::assertSame(5, $value->get('1'));
    }

    public function test_keeps_empty_map_apart_from_empty_array(): void
    {
        self::assertInstanceOf(Map::class, Decoder::decode(hex2bin('a0')));
        self::assertSame([], Decoder::decode(hex2bin('80')));
    }

    public function test_accepts_integers_not_in_shortest_form_like_the_python_decoder(): void
    {
        self::assertSame(1, Decoder::decode(hex2bin('1a00000001')));
    }

    /** @return array<string, array{string, string}> hex input => part of the error message */
    public static function refusedInputs(): array
    {
        return [
            'empty input' => ['', 'empty'],
            'trailing byte' => ['0000', 'trailing'],
            'trailing bytes after a map' => ['a0ff', 'trailing'],
            'truncated uint' => ['19 01', 'ends early'],
            'truncated text' => ['644945', 'ends early'],
            'truncated array' => ['82011901', 'ends early'],
            'array count beyond the input' => ['830102', 'declares'],
            'half-precision float' => ['f93c00', 'float'],
            'double float' => ['fb3ff199999999999a', 'float'],
            'undefined' => ['f7', 'simple'],
            'simple value 16' => ['f0', 'simple'],
            'tag 1 (epoch time)' => ['c11a514b67b0', 'tags'],
            'tag 2 (bignum)' => ['c249010000000000000000', 'tags'],
            'indefinite byte string' => ['5f42010243030405ff', 'indefinite'],
            'indefinite text' => ['7f657374726561646d696e67ff', 'indefinite'],
            'indefinite array' => ['9f0102ff', 'indefinite'],
            'indefinite map' => ['bf61610161629f0203ffff', 'indefinite'],
            'break outside container' => ['ff', 'simple'],
            'reserved additional info 28' => ['1c', 'reserved'],
            'reserved additional info 30' => ['5e', 'reserved'],
            'uint above PHP_INT_MAX' => ['1b8000000000000000', 'does not fit'],
            'negative below PHP_INT_MIN' => ['3b8000000000000000', 'does not fit'],
            'invalid utf-8 text' => ['62c328', 'utf-8'],
            'byte-string map key' => ['a1410001', 'not text'],
            'integer map key' => ['a10102', 'not text'],
            'duplicate map key' => ['a2616101616102', 'duplicate'],
            'huge declared byte length' => ['5b00ffffffffffffff', 'ends early'],
            'huge declared array count' => ['9b00ffffffffffffff', 'declares'],
            'huge declared map count' => ['bb00ffffffffffffff', 'declares'],
        ];
    }

    /** @dataProvider refusedInputs */
    public function test_refuses_input_outside_the_strict_subset(string $hex, string $reason): void
    {
        $this->expectException(DecodeException::class);
        $this->expectExceptionMessage($reason);

        Decoder::decode(hex2bin(str_replace(' ', '', $hex)));
    }

    public function test_refuses_nesting_deeper_than_the_limit(): void
    {
        $this->expectException(DecodeException::class);
        $this->expectExceptionMessage('nesting deeper than 32');

        Decoder::decode(str_repeat("\x81", 40) . "\x00");
    }

    public function test_accepts_nesting_up_to_the_limit(): void
    {
        $value = Decoder::decode(str_repeat("\x81", 32) . "\x00");

        for ($i = 0; $i < 32; $i++) {
            $value = $value[0];
        }
        self::assertSame(0, $value);
    }

    public function test_refuses_input_larger_than_the_size_cap_before_decoding(): void
    {
        $this->expectException(DecodeException::class);
        $this->expectExceptionMessage('more than the 16 allowed');

        Decoder::decode("\x51" . str_repeat('x', 17), maxSize: 16);
    }
}
