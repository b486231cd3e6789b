<?php

declare(strict_types=1);

namespace Plasm\Exception;

/**
 * The transport cannot do this: LocalTransport runs one job per `plasmd execute-job` process
 * and has no daemon to list peers, cancel jobs or report node info. Use a Unix socket or TCP
 * transport against a running `plasmd run` for those.
 */
class UnsupportedOperationException extends PlasmException
{
}
