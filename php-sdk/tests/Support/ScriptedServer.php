<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

/**
 * Starts scripted_server.php in its own process (Unix socket or loopback TCP on a free port),
 * waits until it listens, reads back the requests it received, and stops it by PID.
 */
final class ScriptedServer
{
    private string $dir;
    /** @var resource */
    private $process;
    public readonly string $address;

    /** @param list<array<string, mixed>> $responses */
    public function __construct(array $responses, public readonly string $kind = 'unix')
    {
        $this->dir = sys_get_temp_dir() . '/plasm-php-test-' . bin2hex(random_bytes(6));
        mkdir($this->dir, 0700);
        file_put_contents($this->dir . '/script.json', json_encode($responses));
        $listen = $kind === 'unix' ? 'unix:' . $this->dir . '/api.sock' : 'tcp';
        $command = [PHP_BINARY, __DIR__ . '/scripted_server.php', $listen, $this->dir . '/script.json', $this->dir . '/requests.jsonl', $this->dir . '/ready'];
        $process = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', $this->dir . '/stderr', 'w']], $pipes);
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot start the scripted server');
        }
        $this->process = $process;
        $deadline = microtime(true) + 10;
        while (!is_file($this->dir . '/ready')) {
            if (microtime(true) > $deadline || !proc_get_status($process)['running']) {
                $this->stop();
                throw new \RuntimeException('the scripted server did not start: ' . @file_get_contents($this->dir . '/stderr'));
            }
            usleep(5_000);
        }
        $this->address = (string) file_get_contents($this->dir . '/ready');
    }

    public function socketPath(): string
    {
        return $this->address;
    }

    public function port(): int
    {
        return (int) substr($this->address, strrpos($this->address, ':') + 1);
    }

    /** @return list<array{method: string, path: string, headers: array<string, string>, body: string}> */
    public function requests(): array
    {
        $log = @file_get_contents($this->dir . '/requests.jsonl');
        $requests = [];
        foreach (array_filter(explode("\n", (string) $log)) as $line) {
            $request = json_decode($line, true);
            $request['body'] = base64_decode($request['body']);
            $requests[] = $request;
        }
        return $requests;
    }

    public function stop(): void
    {
        if (is_resource($this->process)) {
            $pid = proc_get_status($this->process)['pid'];
            posix_kill($pid, SIGTERM);
            proc_close($this->process);
        }
        foreach (glob($this->dir . '/*') ?: [] as $file) {
            @unlink($file);
        }
        @rmdir($this->dir);
    }
}
