<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

/**
 * examples/remote_test.php against a real daemon, as a user runs it.
 *
 * @large
 */
final class ExampleScriptTest extends DaemonTestCase
{
    public function test_prints_the_reversed_greeting_and_a_verified_receipt(): void
    {
        [$status, $output] = self::runExample([self::$daemon->socket], []);

        self::assertSame(0, $status, $output);
        self::assertStringContainsString('output:    dlroW ,olleH', $output);
        self::assertStringContainsString('receipt:   verified', $output);
        self::assertStringContainsString('(this node)', $output);
    }

    public function test_takes_the_socket_from_plasm_socket(): void
    {
        [$status, $output] = self::runExample([], ['PLASM_SOCKET' => self::$daemon->socket]);

        self::assertSame(0, $status, $output);
        self::assertStringContainsString('receipt:   verified', $output);
    }

    public function test_fails_without_saying_verified_when_the_daemon_is_unreachable(): void
    {
        [$status, $output] = self::runExample([self::$daemon->dir . '/missing.sock'], []);

        self::assertSame(2, $status);
        self::assertStringNotContainsString('verified', $output);
    }

    /**
     * @param list<string> $args
     * @param array<string, string> $env
     * @return array{0: int, 1: string}
     */
    private static function runExample(array $args, array $env): array
    {
        $command = [PHP_BINARY, dirname(__DIR__, 2) . '/examples/remote_test.php', ...$args];
        $environment = array_merge(getenv(), ['PLASM_SOCKET' => ''], $env);
        $process = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes, null, $environment);
        $output = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        return [proc_close($process), (string) $output];
    }
}
