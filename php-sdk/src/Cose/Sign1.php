<?php

declare(strict_types=1);

namespace Plasm\Cose;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Encoder;
use Plasm\Exception\DecodeException;

/*
 * Theory of operation: COSE_Sign1 (RFC 9052) in the one form Plasm signs, as
 * protocol/cose.py writes and reads it. A signed object is the tagged array
 * 18([protected, {}, payload, signature]) where `protected` is the canonical CBOR map
 * {1: -8 (EdDSA), 3: content type, 4: kid} and the kid is the UTF-8 peer ID of the signer
 * (its Ed25519 key sits inside the peer ID). The signature is Ed25519 over the canonical
 * Sig_structure ["Signature1", protected, h'', payload], which this SDK encodes itself.
 *
 * decode() accepts that encoding only: the tag, shortest-form lengths, the exact protected
 * map, an empty unprotected map, a 64-byte signature, nothing after. Anything else — the same
 * values encoded another way, extra header parameters, no tag — is a DecodeException, so two
 * different byte strings never verify as the same object. Only the COSE structure is read
 * here; the payload is the caller's (Receipt checks it is canonical CBOR of a v2 body).
 */
final class Sign1
{
    public const TAG = 18;
    public const ALG_EDDSA = -8;
    public const SIGNATURE_BYTES = 64;
    public const CONTENT_TYPE_RECEIPT = 'application/vnd.plasm.receipt+cbor';
    private const MAX_HEADER_TEXT = 256;

    private string $data = '';
    private int $pos = 0;

    private function __construct(
        public readonly string $protected,
        public readonly string $payload,
        public readonly string $signature,
        public readonly string $contentType,
        public readonly string $kid,
    ) {
    }

    /** Decode COSE bytes in Plasm's one accepted encoding; DecodeException otherwise. */
    public static function decode(string $data, int $maxSize, ?string $contentType = null): self
    {
        if (strlen($data) > $maxSize) {
            throw new DecodeException(sprintf('COSE_Sign1 of %d bytes exceeds the %d-byte cap', strlen($data), $maxSize));
        }
        $reader = new self('', '', '', '', '');
        $reader->data = $data;
        if (($data[0] ?? '') !== chr(6 << 5 | self::TAG) || $reader->head(6) !== self::TAG) {
            throw new DecodeException('not a COSE_Sign1: expected CBOR tag 18');
        }
        if ($reader->head(4) !== 4) {
            throw new DecodeException('a COSE_Sign1 is an array of 4 items');
        }
        $protected = $reader->byteString('protected header');
        if ($reader->head(5) !== 0) {
            throw new DecodeException('the unprotected header must be empty');
        }
        $payload = $reader->byteString('payload');
        $signature = $reader->byteString('signature');
        if (strlen($signature) !== self::SIGNATURE_BYTES) {
            throw new DecodeException(sprintf('an Ed25519 signature is %d bytes, not %d', self::SIGNATURE_BYTES, strlen($signature)));
        }
        $reader->end('COSE_Sign1');
        [$foundType, $kid] = self::readProtected($protected);
        if ($contentType !== null && $foundType !== $contentType) {
            throw new DecodeException(sprintf('content type "%s", expected "%s"', $foundType, $contentType));
        }
        return new self($protected, $payload, $signature, $foundType, $kid);
    }

    /** The canonical CBOR of the protected header {1: -8, 3: $contentType, 4: kid bytes}. */
    public static function protectedHeader(string $contentType, string $kid): string
    {
        return Encoder::head(5, 3)
            . Encoder::encode(1) . Encoder::encode(self::ALG_EDDSA)
            . Encoder::encode(3) . Encoder::encode($contentType)
            . Encoder::encode(4) . Encoder::encode(new ByteString($kid));
    }

    /** The canonical CBOR of ["Signature1", protected, h'', payload] (RFC 9052 §4.4): what is signed. */
    public static function sigStructure(string $protected, string $payload): string
    {
        return Encoder::encode(['Signature1', new ByteString($protected), new ByteString(''), new ByteString($payload)]);
    }

    /** The tagged COSE_Sign1 bytes of these parts. */
    public static function encode(string $protected, string $payload, string $signature): string
    {
        return Encoder::head(6, self::TAG) . Encoder::head(4, 4)
            . Encoder::encode(new ByteString($protected))
            . Encoder::head(5, 0)
            . Encoder::encode(new ByteString($payload))
            . Encoder::encode(new ByteString($signature));
    }

    /** Whether the signature is valid for $publicKey (raw 32-byte Ed25519) over the Sig_structure. */
    public function verifySignature(string $publicKey): bool
    {
        if (strlen($publicKey) !== SODIUM_CRYPTO_SIGN_PUBLICKEYBYTES) {
            return false;
        }
        try {
            return sodium_crypto_sign_verify_detached($this->signature, self::sigStructure($this->protected, $this->payload), $publicKey);
        } catch (\SodiumException) {
            return false;
        }
    }

    /** @return array{0: string, 1: string} content type, kid */
    private static function readProtected(string $protected): array
    {
        $reader = new self('', '', '', '', '');
        $reader->data = $protected;
        if ($reader->head(5) !== 3) {
            throw new DecodeException('the protected header must be the map {1: alg, 3: content type, 4: kid}');
        }
        if ($reader->raw(2) !== "\x01\x27") {
            throw new DecodeException('the protected header must start with alg (1): EdDSA (-8)');
        }
        if ($reader->raw(1) !== "\x03") {
            throw new DecodeException("the protected header's second key must be content type (3)");
        }
        $contentType = $reader->raw($reader->head(3, 'content type'));
        if (preg_match('//u', $contentType) !== 1) {
            throw new DecodeException('the content type is not UTF-8');
        }
        if ($reader->raw(1) !== "\x04") {
            throw new DecodeException("the protected header's third key must be kid (4)");
        }
        $kid = $reader->raw($reader->head(2, 'kid'));
        $reader->end('protected header');
        if (preg_match('//u', $kid) !== 1) {
            throw new DecodeException('the kid must be the UTF-8 bytes of a peer ID');
        }
        // Belt and braces: the header is byte for byte the one this SDK would write.
        if (self::protectedHeader($contentType, $kid) !== $protected) {
            throw new DecodeException('the protected header is not in its canonical form');
        }
        return [$contentType, $kid];
    }

    private function raw(int $count): string
    {
        if ($count > strlen($this->data) - $this->pos) {
            throw new DecodeException('COSE bytes end too early');
        }
        $chunk = substr($this->data, $this->pos, $count);
        $this->pos += $count;
        return $chunk;
    }

    /** A CBOR head of major type $major in shortest form; its argument. $limited: a header text of at most 256 bytes. */
    private function head(int $major, ?string $limited = null): int
    {
        $initial = ord($this->raw(1));
        if ($initial >> 5 !== $major) {
            throw new DecodeException(sprintf('expected CBOR major type %d, found %d', $major, $initial >> 5));
        }
        $info = $initial & 0x1f;
        if ($info < 24) {
            $value = $info;
        } elseif ($info > 27) {
            throw new DecodeException('indefinite or reserved CBOR lengths are refused');
        } else {
            $size = 1 << ($info - 24);
            $bytes = $this->raw($size);
            if ($size === 8 && ord($bytes[0]) > 0x7f) {
                throw new DecodeException('a CBOR length does not fit in a signed 64-bit integer');
            }
            $value = 0;
            for ($i = 0; $i < $size; $i++) {
                $value = ($value << 8) | ord($bytes[$i]);
            }
            if ($value < ($size === 1 ? 24 : 1 << (4 * $size))) {
                throw new DecodeException('a CBOR length is not in its shortest form');
            }
        }
        if ($limited !== null && $value > self::MAX_HEADER_TEXT) {
            throw new DecodeException(sprintf('the %s is over %d bytes', $limited, self::MAX_HEADER_TEXT));
        }
        return $value;
    }

    private function byteString(string $what): string
    {
        return $this->raw($this->head(2));
    }

    private function end(string $what): void
    {
        if ($this->pos !== strlen($this->data)) {
            throw new DecodeException(sprintf('%d trailing bytes after the %s', strlen($this->data) - $this->pos, $what));
        }
    }
}
