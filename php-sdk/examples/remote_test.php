<?php

/*
 * Runs hello.wasm with "Hello, World" through a local plasmd — on another peer when the node
 * knows peers, else on the node itself — prints the output and a summary of the receipt,
 * which says "verified" only when the signature, the executor key, the module hash and the
 * output hashes all checked out.
 *
 * usage: php examples/remote_test.php [SOCKET]   (default $PLASM_SOCKET, else /run/plasmd/plasmd.sock)
 * exit status: 0 verified, 1 the receipt did not verify, 2 the job could not be run
 */

declare(strict_types=1);

$composer = __DIR__ . '/../vendor/autoload.php';
require is_file($composer) ? $composer : __DIR__ . '/../autoload.php';

use Plasm\Client;
use Plasm\Exception\PlasmException;
use Plasm\Exception\VerificationException;
use Plasm\Manifest;
use Plasm\Transport\UnixSocketTransport;

$socket = $argv[1] ?? (getenv('PLASM_SOCKET') ?: UnixSocketTransport::DEFAULT_SOCKET);
$module = getenv('PLASM_HELLO_WASM') ?: __DIR__ . '/../../wasm-examples/hello.wasm';

try {
    $client = Client::unix($socket);
    $node = $client->nodeInfo();
    $peers = $client->peers();
    $manifest = Manifest::fromFile($module)->withStdin('Hello, World');
    if ($peers !== []) {
        $manifest = $manifest->runOnAnyPeer(excludeSelf: true);
        printf("node %s knows %d peer(s); asking one of them to run %s\n", $node['peer_id'], count($peers), basename($module));
    } else {
        $manifest = $manifest->runLocally();
        printf("node %s knows no peers; running %s on the node itself\n", $node['peer_id'], basename($module));
    }
    $result = $client->submit($manifest, waitSeconds: 30);
    $job = $result->isFinished() ? $result : $client->waitForJob($result->jobId, 60);
    if ($job->result === null) {
        fprintf(STDERR, "job %s ended as %s without a result: %s\n", $job->jobId, $job->status, $job->error['message'] ?? json_encode($job->error));
        foreach ($job->attempts() as $attempt) {
            fprintf(STDERR, "  asked %s: %s\n", $attempt['peer_id'], $attempt['result']);
        }
        exit(2);
    }
    $result = $job->result;
} catch (PlasmException $e) {
    fprintf(STDERR, "remote_test: %s\n", $e->getMessage());
    exit(2);
}

printf("executor:  %s%s\n", $result->executor, $result->executor === $node['peer_id'] ? ' (this node)' : ' (a remote peer)');
printf("outcome:   %s\n", $result->outcomeKind . ($result->exitCode !== null ? " (exit code {$result->exitCode})" : ''));
printf("output:    %s\n", rtrim($result->stdoutText(), "\n"));

try {
    $receipt = $result->verifyReceipt($manifest);
} catch (VerificationException $e) {
    printf("receipt:   NOT verified — %s\n", $e->getMessage());
    exit(1);
}
echo $receipt->summary(), "\n";
exit(0);
