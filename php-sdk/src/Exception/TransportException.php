<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * The request never got an answer from the node: the socket is missing, the connection was
 * refused or dropped, or the local `plasmd` process could not be run. Unlike ApiException,
 * the node did not say anything about the request.
 */
class TransportException extends PlasmException
{
}
