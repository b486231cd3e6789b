<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * Base of every error the SDK throws on purpose. Catch this to handle any Plasm failure;
 * catch a subclass to handle one failure mode.
 */
class PlasmException extends \RuntimeException
{
}
