<?php

declare(strict_types=1);

namespace Plasm\Transport;

/** The daemon's local API on loopback TCP; every request carries the bearer token. */
final class TcpTransport extends CurlTransport
{
    public function __construct(string $host, int $port, string $token, float $timeoutSeconds = 30.0, float $connectTimeoutSeconds = 5.0)
    {
        if ($token === '') {
            throw new \Plasm\Exception\InvalidArgumentException('the TCP API needs the bearer token from the daemon configuration');
        }
        $hostPart = str_contains($host, ':') ? "[$host]" : $host;
        parent::__construct(sprintf('http://%s:%d', $hostPart, $port), null, $token, $timeoutSeconds, $connectTimeoutSeconds);
    }
}
