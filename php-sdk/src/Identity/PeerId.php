<?php

declare(strict_types=1);

namespace Plasm\Identity;

use Plasm\Exception\DecodeException;

/**
 * libp2p peer IDs for Ed25519 keys: base58btc of the identity multihash (code 0x00, length
 * 0x24 = 36) of the protobuf `PublicKey{Type: Ed25519 (1), Data: key}` — bytes
 * 08 01 12 20 followed by the 32-byte key. They read `12D3KooW...`.
 */
final class PeerId
{
    private const PREFIX = "\x00\x24\x08\x01\x12\x20";

    public static function fromPublicKey(string $publicKey): string
    {
        if (strlen($publicKey) !== SODIUM_CRYPTO_SIGN_PUBLICKEYBYTES) {
            throw new \Plasm\Exception\InvalidArgumentException(sprintf('an ed25519 public key is 32 bytes, got %d', strlen($publicKey)));
        }
        return Base58::encode(self::PREFIX . $publicKey);
    }

    /** The raw 32-byte Ed25519 key a peer ID embeds. */
    public static function toPublicKey(string $peerId): string
    {
        $bytes = Base58::decode($peerId);
        if (strlen($bytes) !== 38 || !str_starts_with($bytes, self::PREFIX)) {
            throw new DecodeException(sprintf('"%s" is not the peer id of an ed25519 key', $peerId));
        }
        return substr($bytes, 6);
    }
}
