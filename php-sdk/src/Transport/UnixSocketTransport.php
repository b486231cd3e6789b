<?php

declare(strict_types=1);

namespace Plasm\Transport;

/** The daemon's local API on its Unix socket; access is governed by the socket's file mode. */
final class UnixSocketTransport extends CurlTransport
{
    public const DEFAULT_SOCKET = '/run/plasmd/plasmd.sock';

    public function __construct(string $socketPath = self::DEFAULT_SOCKET, float $timeoutSeconds = 30.0, float $connectTimeoutSeconds = 5.0)
    {
        parent::__construct('http://localhost', $socketPath, null, $timeoutSeconds, $connectTimeoutSeconds);
    }
}
