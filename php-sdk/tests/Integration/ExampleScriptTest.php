<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Tests\Support\ExampleScript;

/**
 * examples/remote_test.php against a real daemon, as a user runs it.
 *
 * @large
 */
final class ExampleScriptTest extends DaemonTestCase
{
    public function test_prints_the_reversed_greeting_and_a_verified_receipt(): void
    {
        [$status, $output] = ExampleScript::run([self::$daemon->socket], []);

        self::assertSame(0, $status, $output);
        self::assertStringContainsString('output:    dlroW ,olleH', $output);
        self::assertStringContainsString('receipt:   verified', $output);
        self::assertStringContainsString('(this node)', $output);
    }

    public function test_takes_the_socket_from_plasm_socket(): void
    {
        [$status, $output] = ExampleScript::run([], ['PLASM_SOCKET' => self::$daemon->socket]);

        self::assertSame(0, $status, $output);
        self::assertStringContainsString('receipt:   verified', $output);
    }

    public function test_fails_without_saying_verified_when_the_daemon_is_unreachable(): void
    {
        [$status, $output] = ExampleScript::run([self::$daemon->dir . '/missing.sock'], []);

        self::assertSame(2, $status);
        self::assertStringNotContainsString('verified', $output);
    }
}
