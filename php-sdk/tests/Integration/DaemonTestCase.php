<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Tests\Support\Daemon;
use PHPUnit\Framework\TestCase;

/**
 * One real `plasmd run` per test class, started before its first test and stopped (by PID)
 * after its last. Without a plasmd binary the tests are skipped — unless
 * PLASM_REQUIRE_INTEGRATION=1 (run-tests.sh sets it when it finds the daemon), which makes a
 * missing daemon a failure so CI cannot pass by skipping.
 */
abstract class DaemonTestCase extends TestCase
{
    protected static ?Daemon $daemon = null;
    private static ?string $startError = null;

    public static function setUpBeforeClass(): void
    {
        self::$startError = null;
        $binary = Daemon::findBinary();
        if ($binary === null) {
            return;
        }
        self::$daemon = new Daemon($binary);
        try {
            self::$daemon->start();
        } catch (\RuntimeException $e) {
            self::$startError = $e->getMessage();
        }
    }

    public static function tearDownAfterClass(): void
    {
        self::$daemon?->stop();
        self::$daemon = null;
    }

    protected function setUp(): void
    {
        if (self::$daemon === null) {
            if (getenv('PLASM_REQUIRE_INTEGRATION') === '1') {
                self::fail('no plasmd found (PLASMD_BIN, .venv/bin/plasmd, PATH) but PLASM_REQUIRE_INTEGRATION=1');
            }
            self::markTestSkipped('no plasmd found: set PLASMD_BIN or install the project into .venv');
        }
        if (self::$startError !== null) {
            self::fail(self::$startError);
        }
    }

    protected function client(): Client
    {
        return Client::unix(self::$daemon->socket, 30.0);
    }

    protected static function plasmdBinary(): string
    {
        return (string) Daemon::findBinary();
    }
}
