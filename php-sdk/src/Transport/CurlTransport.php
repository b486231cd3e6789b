<?php

declare(strict_types=1);

namespace Plasm\Transport;

use Plasm\Exception\TimeoutException;
use Plasm\Exception\TransportException;

/**
 * HTTP/1.1 to the daemon's local API with ext-curl, over a Unix socket or loopback TCP.
 * One curl handle is kept per transport so consecutive requests reuse the connection.
 */
class CurlTransport implements Transport
{
    private ?\CurlHandle $handle = null;

    /**
     * @param string $baseUrl e.g. http://localhost (Unix socket) or http://127.0.0.1:7878
     * @param string|null $unixSocket path of the daemon's socket, or null for TCP
     * @param string|null $token bearer token sent as `Authorization: Bearer ...`
     */
    public function __construct(
        private readonly string $baseUrl,
        private readonly ?string $unixSocket = null,
        private readonly ?string $token = null,
        private readonly float $timeoutSeconds = 30.0,
        private readonly float $connectTimeoutSeconds = 5.0,
    ) {
    }

    public function send(Request $request): Response
    {
        $this->handle ??= curl_init();
        curl_reset($this->handle);
        $headers = ['Accept: application/json', 'Expect:'];
        if ($this->token !== null) {
            $headers[] = 'Authorization: Bearer ' . $this->token;
        }
        if ($request->body !== null) {
            $headers[] = 'Content-Type: ' . $request->contentType;
        }
        $responseHeaders = [];
        $options = [
            CURLOPT_URL => rtrim($this->baseUrl, '/') . $request->path,
            CURLOPT_CUSTOMREQUEST => $request->method,
            CURLOPT_HTTP_VERSION => CURL_HTTP_VERSION_1_1,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_TIMEOUT_MS => (int) ceil(1000 * ($request->timeoutSeconds ?? $this->timeoutSeconds)),
            CURLOPT_CONNECTTIMEOUT_MS => (int) ceil(1000 * $this->connectTimeoutSeconds),
            CURLOPT_NOSIGNAL => true,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP,
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$responseHeaders): int {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) {
                    $responseHeaders[strtolower(trim($parts[0]))] = trim($parts[1]);
                }
                return strlen($line);
            },
        ];
        if ($this->unixSocket !== null) {
            $options[CURLOPT_UNIX_SOCKET_PATH] = $this->unixSocket;
        }
        if ($request->body !== null) {
            $options[CURLOPT_POSTFIELDS] = $request->body;
        }
        curl_setopt_array($this->handle, $options);
        $body = curl_exec($this->handle);
        if ($body === false) {
            $errno = curl_errno($this->handle);
            $error = curl_error($this->handle);
            if ($errno === CURLE_OPERATION_TIMEDOUT) {
                throw new TimeoutException(sprintf('%s %s got no answer from %s in time (%s); the job may still run on the node', $request->method, $request->path, $this->describe(), $error));
            }
            if ($this->unixSocket !== null) {
                // curl says "Failed to connect to localhost port 80" for a socket: say what it is
                $error = file_exists($this->unixSocket) ? sprintf('nothing accepts connections on it (curl: %s)', $error) : 'there is no such socket file';
            }
            throw new TransportException(sprintf('cannot reach plasmd at %s: %s; is the daemon running (plasmd run) and is the address right?', $this->describe(), $error));
        }
        return new Response((int) curl_getinfo($this->handle, CURLINFO_RESPONSE_CODE), (string) $body, $responseHeaders);
    }

    public function timeoutSeconds(): float
    {
        return $this->timeoutSeconds;
    }

    public function describe(): string
    {
        return $this->unixSocket !== null ? 'unix socket ' . $this->unixSocket : $this->baseUrl;
    }
}
