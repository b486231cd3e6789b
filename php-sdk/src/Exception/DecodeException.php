<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * Bytes are not well-formed CBOR of the subset Plasm uses (or carry trailing bytes, duplicate
 * keys, indefinite lengths, floats, tags...). The receipt verifier reports this as a
 * VerificationException with reason `malformed`.
 */
class DecodeException extends PlasmException
{
}
