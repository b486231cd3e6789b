<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Exception\DecodeException;
use Plasm\Identity\Base58;
use Plasm\Identity\PeerId;
use PHPUnit\Framework\TestCase;

/** @small */
final class PeerIdTest extends TestCase
{
    /** @return array<string, array{string, string}> bytes (hex) => base58btc */
    public static function base58Vectors(): array
    {
        return [
            'empty' => ['', ''],
            'one zero byte' => ['00', '1'],
            'leading zeros' => ['0000287fb4cd', '11233QC4'],
            'hello world' => [bin2hex('hello world'), 'StV1DL6CwTryKyV'],
            'single 0x61' => ['61', '2g'],
            'all ones byte' => ['ff', '5Q'],
            'bitcoin vector' => ['00eb15231dfceb60925886b67d065299925915aeb172c06647', '1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L'],
        ];
    }

    /** @dataProvider base58Vectors */
    public function test_base58_encodes_known_vector(string $hex, string $text): void
    {
        self::assertSame($text, Base58::encode(hex2bin($hex)));
    }

    /** @dataProvider base58Vectors */
    public function test_base58_decodes_known_vector(string $hex, string $text): void
    {
        self::assertSame($hex, bin2hex(Base58::decode($text)));
    }

    public function test_base58_refuses_characters_outside_the_alphabet(): void
    {
        $this->expectException(DecodeException::class);

        Base58::decode('12D3KooW0'); // '0' is not in base58btc
    }

    public function test_peer_id_of_an_ed25519_key_matches_the_libp2p_form(): void
    {
        // Computed independently with Python big integers over 00 24 08 01 12 20 || key.
        self::assertSame(
            '12D3KooW9tHTtS3inCZiYykw4u5G4frbjVFqhkmJX12gSNCVeH3e',
            PeerId::fromPublicKey(str_repeat("\x01", 32)),
        );
    }

    public function test_peer_id_round_trips_to_the_public_key(): void
    {
        $key = sodium_crypto_sign_publickey(sodium_crypto_sign_seed_keypair(str_repeat('k', 32)));

        $peerId = PeerId::fromPublicKey($key);

        self::assertStringStartsWith('12D3KooW', $peerId);
        self::assertSame($key, PeerId::toPublicKey($peerId));
    }

    public function test_peer_id_refuses_a_key_of_the_wrong_length(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);

        PeerId::fromPublicKey(str_repeat("\x01", 31));
    }

    public function test_public_key_extraction_refuses_a_non_ed25519_peer_id(): void
    {
        $this->expectException(DecodeException::class);

        PeerId::toPublicKey(Base58::encode("\x12\x20" . str_repeat("\x01", 32))); // a sha256 multihash
    }
}
