<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * A value the SDK was given cannot be used (a missing module file, an impossible quorum, a
 * bad peer ID, ...): the message names the value, or the file. A PlasmException like every
 * other error the SDK throws, so one catch handles them all.
 */
class InvalidArgumentException extends PlasmException
{
}
