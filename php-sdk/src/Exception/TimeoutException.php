<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * The node did not answer within the client's time limit. The request may still be running
 * on the node: look the job up with Client::getJob() before submitting it again.
 */
class TimeoutException extends TransportException
{
}
