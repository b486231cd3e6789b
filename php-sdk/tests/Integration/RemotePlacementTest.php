<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Exception\JobFailedException;
use Plasm\Manifest;
use Plasm\Tests\Support\Daemon;
use Plasm\Tests\Support\ExampleScript;

/**
 * The SDK against two real daemons networked on loopback: node A, and node B bootstrapped
 * from A's first address. The client only talks to B; jobs it places elsewhere run on A.
 * A allows at most 1,000,000,000 fuel per job, B the default maximum, so a job asking for
 * 2,000,000,000 passes B's checks and is refused by A.
 *
 * @large
 */
final class RemotePlacementTest extends DaemonTestCase
{
    private const A_MAX_FUEL = 1_000_000_000;
    private const PEER_TIMEOUT_S = 30.0;

    private static ?Daemon $nodeA = null;
    private static ?Daemon $nodeB = null;
    private static string $peerA = '';
    private static string $peerB = '';

    protected static function startDaemons(string $binary): void
    {
        [self::$nodeA, self::$nodeB] = self::launchPair($binary, ['[limits.max]', 'fuel = ' . self::A_MAX_FUEL], self::PEER_TIMEOUT_S);
        self::$peerA = self::$nodeA->peerId();
        self::$peerB = self::$nodeB->peerId();
    }

    public static function tearDownAfterClass(): void
    {
        parent::tearDownAfterClass();
        self::$nodeA = self::$nodeB = null;
    }

    public function test_peers_on_b_lists_a_connected_with_its_capabilities(): void
    {
        $peers = array_column($this->clientOfB()->peers(), null, 'peer_id');

        self::assertArrayHasKey(self::$peerA, $peers);
        self::assertTrue($peers[self::$peerA]['connected']);
        self::assertSame(self::A_MAX_FUEL, $peers[self::$peerA]['capabilities']['max_limits']['fuel']);
    }

    public function test_a_job_placed_on_any_other_peer_runs_on_a_and_its_receipt_names_a_and_b(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('Hello, World')->runOnAnyPeer(excludeSelf: true);

        $job = $this->clientOfB()->submit($manifest, waitSeconds: 30);

        self::assertSame('done', $job->status, json_encode($job->raw));
        self::assertSame("dlroW ,olleH\n", $job->result?->stdout);
        self::assertSame(self::$peerA, $job->result->executor);
        $receipt = $job->result->verifyReceipt($manifest);
        self::assertSame(self::$peerA, $receipt->executor);
        self::assertSame(self::$peerB, $receipt->requester);
    }

    public function test_a_job_placed_on_a_by_peer_id_runs_there_and_its_receipt_names_a_and_b(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('Hello, World')->runOnPeer(self::$peerA);

        $result = $this->clientOfB()->run($manifest, timeoutSeconds: 30);

        self::assertSame("dlroW ,olleH\n", $result->stdout);
        self::assertSame(self::$peerA, $result->executor);
        $receipt = $result->verifyReceipt($manifest);
        self::assertSame(self::$peerA, $receipt->executor);
        self::assertSame(self::$peerB, $receipt->requester);
    }

    public function test_a_remote_refusal_fails_the_job_with_the_peer_and_its_reason_in_the_attempts(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withLimits(fuel: 2 * self::A_MAX_FUEL)->runOnPeer(self::$peerA);

        $job = $this->clientOfB()->submit($manifest, waitSeconds: 30);

        self::assertSame('failed', $job->status, json_encode($job->raw));
        self::assertNull($job->result);
        self::assertContains(['peer_id' => self::$peerA, 'result' => 'limits_exceeded'], $job->attempts());
    }

    public function test_run_raises_job_failed_naming_the_peer_that_refused(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withLimits(fuel: 2 * self::A_MAX_FUEL)->runOnPeer(self::$peerA);

        try {
            $this->clientOfB()->run($manifest, timeoutSeconds: 30);
            self::fail('expected the job to fail on A');
        } catch (JobFailedException $e) {
            self::assertSame('failed', $e->getJobStatus());
            self::assertSame([['peer_id' => self::$peerA, 'result' => 'limits_exceeded']], $e->getAttempts());
            self::assertStringContainsString('limits_exceeded', $e->getMessage());
        }
    }

    public function test_the_example_script_on_b_runs_on_a_remote_peer_and_verifies(): void
    {
        [$status, $output] = ExampleScript::run([self::$nodeB->socket]);

        self::assertSame(0, $status, $output);
        self::assertStringContainsString('executor:  ' . self::$peerA . ' (a remote peer)', $output);
        self::assertStringContainsString('output:    dlroW ,olleH', $output);
        self::assertStringContainsString('receipt:   verified', $output);
    }

    private function clientOfB(): Client
    {
        return Client::unix(self::$nodeB->socket, 30.0);
    }
}
