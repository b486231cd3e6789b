<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Tests\Support\Daemon;
use PHPUnit\Framework\TestCase;

/**
 * Real `plasmd run` processes per test class, started before its first test and stopped (by
 * PID) after its last: by default one node without networking in self::$daemon; a class that
 * needs others overrides startDaemons() and starts each with launch(). Without a plasmd
 * binary the tests are skipped — unless
 * PLASM_REQUIRE_INTEGRATION=1 (run-tests.sh sets it when it finds the daemon), which makes a
 * missing daemon a failure so CI cannot pass by skipping.
 */
abstract class DaemonTestCase extends TestCase
{
    protected static ?Daemon $daemon = null;
    /** @var list<Daemon> every daemon launch() started for the current class */
    private static array $launched = [];
    private static bool $binaryFound = false;
    private static ?string $startError = null;

    public static function setUpBeforeClass(): void
    {
        self::$startError = null;
        $binary = Daemon::findBinary();
        self::$binaryFound = $binary !== null;
        if ($binary === null) {
            return;
        }
        try {
            static::startDaemons($binary);
        } catch (\RuntimeException $e) {
            self::$startError = $e->getMessage();
        }
    }

    public static function tearDownAfterClass(): void
    {
        // Newest first: a node that bootstrapped from another goes before it.
        foreach (array_reverse(self::$launched) as $daemon) {
            $daemon->stop();
        }
        self::$launched = [];
        self::$daemon = null;
    }

    /** Start the class's daemons with launch(); by default one node without networking. */
    protected static function startDaemons(string $binary): void
    {
        self::$daemon = self::launch(new Daemon($binary));
    }

    /**
     * Start a daemon and have tearDownAfterClass() stop it, even when start() fails.
     *
     * @param list<string> $bootstrap full multiaddrs of peers to join
     */
    protected static function launch(Daemon $daemon, array $bootstrap = []): Daemon
    {
        self::$launched[] = $daemon;
        return $daemon->start($bootstrap);
    }

    /**
     * Two nodes networked on loopback: A, and B bootstrapped from A's first address, returned
     * once B has verified A's capability record (so B would place jobs on A).
     *
     * @param list<string> $configOfA TOML lines for A's config
     * @return array{0: Daemon, 1: Daemon} A and B
     */
    protected static function launchPair(string $binary, array $configOfA = [], float $timeoutSeconds = 30.0): array
    {
        $a = self::launch(new Daemon($binary, networked: true, extraConfig: $configOfA));
        $b = self::launch(new Daemon($binary, networked: true), bootstrap: [$a->p2pAddresses()[0]]);
        $b->waitForVerifiedPeer($a->peerId(), $timeoutSeconds);
        return [$a, $b];
    }

    protected function setUp(): void
    {
        if (!self::$binaryFound) {
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
