<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Client;
use Plasm\Exception\VerificationException;
use Plasm\Manifest;
use Plasm\Result;
use Plasm\Tests\Support\Daemon;

/**
 * A quorum job from the SDK against three real daemons on loopback: A, B bootstrapped from
 * A (the client talks to B), and C bootstrapped from A. B runs the job on A and C and takes
 * it when both receipts agree. (Lying replicas are tested with real daemons in
 * tests/p2p/test_quorum_jobs.py.)
 *
 * @large
 */
final class QuorumTest extends DaemonTestCase
{
    private const PEER_TIMEOUT_S = 30.0;

    private static ?Daemon $nodeB = null;
    /** @var list<string> */
    private static array $executors = [];

    protected static function startDaemons(string $binary): void
    {
        [$a, self::$nodeB] = self::launchPair($binary, [], self::PEER_TIMEOUT_S);
        $c = self::launch(new Daemon($binary, networked: true), bootstrap: [$a->p2pAddresses()[0]]);
        self::$nodeB->waitForVerifiedPeer($c->peerId(), self::PEER_TIMEOUT_S);
        self::$executors = [$a->peerId(), $c->peerId()];
        sort(self::$executors);
    }

    public static function tearDownAfterClass(): void
    {
        parent::tearDownAfterClass();
        self::$nodeB = null;
    }

    public function test_a_quorum_of_two_runs_on_both_other_peers_and_verifies(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('Hello, World')->runWithQuorum(2, 2);

        $job = Client::unix(self::$nodeB->socket, 60.0)->submit($manifest, waitSeconds: 60);

        self::assertSame('done', $job->status, json_encode($job->raw));
        $result = $job->result;
        self::assertNotNull($result);
        self::assertSame("dlroW ,olleH\n", $result->stdout);
        $quorum = $job->quorum();
        self::assertNotNull($quorum);
        self::assertTrue($quorum['agreed']);
        $agreeing = $quorum['agreeing'];
        sort($agreeing);
        self::assertSame(self::$executors, $agreeing);
        self::assertSame([], $quorum['dissenting']);
        self::assertCount(2, $quorum['receipts']);
        $receipt = $result->verifyReceipt($manifest);  // checks the quorum too
        self::assertContains($receipt->executor, self::$executors);
        self::assertSame(2, Result::checkQuorum($quorum, $receipt));
    }

    public function test_a_quorum_naming_fewer_agreeing_than_it_needs_is_refused(): void
    {
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('Hello, World')->runWithQuorum(2, 2);
        $job = Client::unix(self::$nodeB->socket, 60.0)->submit($manifest, waitSeconds: 60);
        $quorum = $job->quorum();
        self::assertNotNull($quorum);

        $quorum['agreeing'] = [$quorum['agreeing'][0]];
        try {
            Result::checkQuorum($quorum);
            self::fail('expected quorum_mismatch');
        } catch (VerificationException $e) {
            self::assertSame('quorum_mismatch', $e->getReason());
        }
        $quorum['quorum'] = 3;
        try {
            Result::checkQuorum($quorum);
            self::fail('expected no_quorum');
        } catch (VerificationException $e) {
            self::assertSame('no_quorum', $e->getReason());
        }
    }
}
