<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

/** Runs examples/remote_test.php as a user would, in its own PHP process. */
final class ExampleScript
{
    /**
     * @param list<string> $args command-line arguments after the script
     * @param array<string, string> $env variables set on top of ours (PLASM_SOCKET cleared first)
     * @return array{0: int, 1: string} exit status, stdout and stderr interleaved
     */
    public static function run(array $args, array $env = []): array
    {
        $command = [PHP_BINARY, dirname(__DIR__, 2) . '/examples/remote_test.php', ...$args];
        $environment = array_merge(getenv(), ['PLASM_SOCKET' => ''], $env);
        $process = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes, null, $environment);
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot start ' . PHP_BINARY);
        }
        $output = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        return [proc_close($process), (string) $output];
    }
}
