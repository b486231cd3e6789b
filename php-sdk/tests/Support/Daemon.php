<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

/**
 * A real `plasmd run` for integration tests: its own temporary state dir, Unix socket and
 * loopback TCP port (with a token), started in its own process, ready once /v1/health
 * answers, stopped by PID (SIGTERM, SIGKILL if it hangs), temp files removed.
 *
 * Networking is off unless $networked: then the node listens for peers on a free loopback
 * TCP port (/ip4/127.0.0.1/tcp/0, no mDNS) and start() may name bootstrap peers; peerId(),
 * p2pAddresses() and waitForVerifiedPeer() help tests form a cluster. $extraConfig lines are
 * appended to the TOML config (e.g. a [limits.max] table).
 *
 * The binary is $PLASMD_BIN, else the checkout's .venv/bin/plasmd, else plasmd on PATH.
 */
final class Daemon
{
    public const START_TIMEOUT_S = 60.0;

    public readonly string $dir;
    public readonly string $socket;
    public readonly int $tcpPort;
    public readonly string $token;
    /** @var resource|null */
    private $process = null;

    /** @param list<string> $extraConfig TOML lines appended to the generated config */
    public function __construct(private readonly string $binary, private readonly bool $networked = false, array $extraConfig = [])
    {
        // Unix socket paths are limited to 107 bytes: keep the directory short.
        $this->dir = sys_get_temp_dir() . '/plasm-php-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700);
        $this->socket = $this->dir . '/api.sock';
        $this->tcpPort = self::freeLoopbackPort();
        $this->token = bin2hex(random_bytes(16));
        file_put_contents($this->dir . '/token', $this->token . "\n");
        chmod($this->dir . '/token', 0600);
        file_put_contents($this->dir . '/plasmd.toml', implode("\n", [
            '[api]',
            sprintf('tcp_listen = "127.0.0.1:%d"', $this->tcpPort),
            sprintf('token_file = "%s"', $this->dir . '/token'),
            '[executor]',
            'count = 2',
            '[network]',
            ...($networked ? ['enabled = true', 'listen = ["/ip4/127.0.0.1/tcp/0"]', 'mdns = false'] : ['enabled = false']),
            ...$extraConfig,
            '',
        ]));
    }

    /** The plasmd to test, or null when none is installed. */
    public static function findBinary(): ?string
    {
        $candidates = array_filter([
            getenv('PLASMD_BIN') ?: null,
            dirname(__DIR__, 3) . '/.venv/bin/plasmd',
        ]);
        foreach ($candidates as $candidate) {
            if (is_file($candidate) && is_executable($candidate)) {
                return $candidate;
            }
        }
        foreach (explode(PATH_SEPARATOR, (string) getenv('PATH')) as $dir) {
            if ($dir !== '' && is_executable($dir . '/plasmd')) {
                return $dir . '/plasmd';
            }
        }
        return null;
    }

    public static function helloWasm(): string
    {
        return dirname(__DIR__, 3) . '/wasm-examples/hello.wasm';
    }

    public static function exampleWasm(string $name): string
    {
        return dirname(__DIR__, 3) . "/wasm-examples/$name.wasm";
    }

    /** @param list<string> $bootstrap full multiaddrs (ending in /p2p/<peer id>) of peers to join */
    public function start(array $bootstrap = []): self
    {
        if ($bootstrap !== [] && !$this->networked) {
            throw new \LogicException('a daemon without networking cannot bootstrap from peers');
        }
        $command = [$this->binary, 'run', '--state-dir', $this->dir . '/state', '--socket', $this->socket,
            '--config', $this->dir . '/plasmd.toml', '--log-format', 'json'];
        foreach ($bootstrap as $address) {
            array_push($command, '--bootstrap', $address);
        }
        $log = $this->dir . '/plasmd.log';
        $process = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']], $pipes);
        if (!is_resource($process)) {
            throw new \RuntimeException("cannot start {$this->binary}");
        }
        $this->process = $process;
        $deadline = microtime(true) + self::START_TIMEOUT_S;
        while (microtime(true) < $deadline) {
            $status = proc_get_status($process);
            if (!$status['running']) {
                throw new \RuntimeException("plasmd exited with status {$status['exitcode']}:\n" . $this->log());
            }
            if (file_exists($this->socket) && $this->healthy()) {
                return $this;
            }
            usleep(50_000);
        }
        throw new \RuntimeException(sprintf("plasmd did not become ready in %.0f s:\n%s", self::START_TIMEOUT_S, $this->log()));
    }

    /** The node's peer ID (GET /v1/node). */
    public function peerId(): string
    {
        return (string) $this->getJson('/v1/node')['peer_id'];
    }

    /** @return list<string> the node's full peer-to-peer multiaddrs, each ending in /p2p/<peer id> */
    public function p2pAddresses(): array
    {
        $addresses = $this->getJson('/v1/node')['addresses'] ?? [];
        if (!is_array($addresses) || $addresses === []) {
            throw new \RuntimeException("the node reports no peer-to-peer addresses; is networking on?\n" . $this->log());
        }
        return array_values($addresses);
    }

    /**
     * Wait until GET /v1/peers lists $peerId with a verified capability record (non-null
     * `capabilities`), i.e. until this node would place jobs on it.
     */
    public function waitForVerifiedPeer(string $peerId, float $timeoutSeconds): void
    {
        $deadline = microtime(true) + $timeoutSeconds;
        while (true) {
            foreach ($this->getJson('/v1/peers')['peers'] ?? [] as $peer) {
                if (($peer['peer_id'] ?? null) === $peerId && is_array($peer['capabilities'] ?? null)) {
                    return;
                }
            }
            if (microtime(true) >= $deadline) {
                throw new \RuntimeException(sprintf("the node did not verify peer %s within %.0f s:\n%s", $peerId, $timeoutSeconds, $this->log()));
            }
            usleep(100_000);
        }
    }

    public function pid(): int
    {
        return $this->process !== null ? proc_get_status($this->process)['pid'] : 0;
    }

    public function log(): string
    {
        return (string) @file_get_contents($this->dir . '/plasmd.log');
    }

    /** SIGTERM by PID, SIGKILL after 20 s; then remove the temporary directory. */
    public function stop(): void
    {
        if (is_resource($this->process)) {
            $pid = proc_get_status($this->process)['pid'];
            if (proc_get_status($this->process)['running']) {
                posix_kill($pid, SIGTERM);
                $deadline = microtime(true) + 20;
                while (proc_get_status($this->process)['running'] && microtime(true) < $deadline) {
                    usleep(20_000);
                }
                if (proc_get_status($this->process)['running']) {
                    posix_kill($pid, SIGKILL);
                }
            }
            proc_close($this->process);
            $this->process = null;
        }
        self::removeTree($this->dir);
    }

    /** @return array<string, mixed> */
    private function getJson(string $path): array
    {
        $curl = curl_init('http://localhost' . $path);
        curl_setopt_array($curl, [CURLOPT_UNIX_SOCKET_PATH => $this->socket, CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 10]);
        $body = curl_exec($curl);
        $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        $error = curl_error($curl);
        curl_close($curl);
        $data = is_string($body) ? json_decode($body, true) : null;
        if ($status !== 200 || !is_array($data)) {
            throw new \RuntimeException(sprintf('GET %s answered HTTP %d: %s', $path, $status, is_string($body) ? substr($body, 0, 300) : $error));
        }
        return $data;
    }

    private function healthy(): bool
    {
        $curl = curl_init('http://localhost/v1/health');
        curl_setopt_array($curl, [CURLOPT_UNIX_SOCKET_PATH => $this->socket, CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 2]);
        $body = curl_exec($curl);
        $ok = is_string($body) && curl_getinfo($curl, CURLINFO_RESPONSE_CODE) === 200;
        curl_close($curl);
        return $ok;
    }

    private static function freeLoopbackPort(): int
    {
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $error);
        if ($server === false) {
            throw new \RuntimeException("cannot find a free loopback port: $error");
        }
        $name = (string) stream_socket_get_name($server, false);
        fclose($server);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    private static function removeTree(string $path): void
    {
        if (is_dir($path) && !is_link($path)) {
            foreach (scandir($path) ?: [] as $entry) {
                if ($entry !== '.' && $entry !== '..') {
                    self::removeTree("$path/$entry");
                }
            }
            @rmdir($path);
        } elseif (file_exists($path) || is_link($path)) {
            @unlink($path);
        }
    }
}
