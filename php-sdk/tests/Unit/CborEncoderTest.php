<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Decoder;
use Plasm\Cbor\Encoder;
use Plasm\Cbor\Map;
use PHPUnit\Framework\TestCase;

/** @small */
final class CborEncoderTest extends TestCase
{
    /** @return array<string, array{mixed, string}> */
    public static function canonicalEncodings(): array
    {
        return [
            'small uint' => [23, '17'],
            'uint in one byte' => [24, '1818'],
            'uint in eight bytes' => [1_000_000_000_000, '1b000000e8d4a51000'],
            'negative' => [-1000, '3903e7'],
            'text' => ['IETF', '6449455446'],
            'bytes' => [new ByteString("\x01\x02"), '420102'],
            'list' => [[1, [2, 3]], '820182 0203'],
            'null and bools' => [[null, true, false], '83f6f5f4'],
            'keys sorted length-first then bytewise' => [['bb' => 1, 'a' => 2, 'b' => 3], 'a3 616102 616203 62626201'],
            'numeric-looking key stays text' => [new Map(['1' => 'x']), 'a1 6131 6178'],
        ];
    }

    /** @dataProvider canonicalEncodings */
    public function test_encodes_canonically(mixed $value, string $hex): void
    {
        self::assertSame(str_replace(' ', '', $hex), bin2hex(Encoder::encode($value)));
    }

    public function test_what_it_encodes_decodes_back(): void
    {
        $value = new Map(['args' => ['a', 'b'], 'env' => new Map(['K' => 'V']), 'stdin' => new ByteString("\0\xff")]);

        $decoded = Decoder::decode(Encoder::encode($value));

        self::assertSame(Encoder::encode($value), Encoder::encode($decoded));
    }

    public function test_refuses_floats(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);

        Encoder::encode(1.5);
    }

    public function test_refuses_text_that_is_not_utf8(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);

        Encoder::encode("\xff");
    }

    public function test_sorts_numeric_looking_keys_bytewise_as_cbor2_does(): void
    {
        // PHP's <=> calls "10" and "1e1" equal (both the number 10); CBOR sorts bytes.
        $encoded = Encoder::encode(new \Plasm\Cbor\Map(['1e1' => 1, '10' => 2, '09' => 3, '1e0' => 4, '100' => 5]));

        self::assertSame('a56230390362313002633130300563316530046331653101', bin2hex($encoded));
    }
}
