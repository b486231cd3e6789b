<?php

declare(strict_types=1);

namespace Plasm\Identity;

use Plasm\Exception\DecodeException;

/**
 * Base58btc (the Bitcoin alphabet) as libp2p peer IDs use it, done with byte-array long
 * division so it needs neither gmp nor bcmath. Leading zero bytes become leading '1's.
 */
final class Base58
{
    private const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

    public static function encode(string $bytes): string
    {
        $zeros = strspn($bytes, "\0");
        // Digits in base 58, least significant first.
        $digits = [];
        $length = strlen($bytes);
        for ($i = $zeros; $i < $length; $i++) {
            $carry = ord($bytes[$i]);
            foreach ($digits as $j => $digit) {
                $carry += $digit << 8;
                $digits[$j] = $carry % 58;
                $carry = intdiv($carry, 58);
            }
            while ($carry > 0) {
                $digits[] = $carry % 58;
                $carry = intdiv($carry, 58);
            }
        }
        $out = str_repeat('1', $zeros);
        for ($j = count($digits) - 1; $j >= 0; $j--) {
            $out .= self::ALPHABET[$digits[$j]];
        }
        return $out;
    }

    public static function decode(string $text): string
    {
        $ones = strspn($text, '1');
        // Bytes in base 256, least significant first.
        $bytes = [];
        $length = strlen($text);
        for ($i = $ones; $i < $length; $i++) {
            $value = strpos(self::ALPHABET, $text[$i]);
            if ($value === false) {
                throw new DecodeException(sprintf('"%s" is not a base58btc character (position %d)', $text[$i], $i));
            }
            $carry = $value;
            foreach ($bytes as $j => $byte) {
                $carry += $byte * 58;
                $bytes[$j] = $carry & 0xff;
                $carry >>= 8;
            }
            while ($carry > 0) {
                $bytes[] = $carry & 0xff;
                $carry >>= 8;
            }
        }
        $out = str_repeat("\0", $ones);
        for ($j = count($bytes) - 1; $j >= 0; $j--) {
            $out .= chr($bytes[$j]);
        }
        return $out;
    }
}
