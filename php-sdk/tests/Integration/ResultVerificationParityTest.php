<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Exception\VerificationException;
use Plasm\Manifest;
use Plasm\Result;
use Plasm\Tests\Support\Daemon;

/**
 * A real job result, edited one covered field at a time: the node (POST /v1/receipts/verify,
 * protocol/verification.py) and Result::verifyReceipt() must both refuse it, with the same
 * reason and the same `<field>: result says X, receipt says Y`. The one deliberate difference:
 * edited stdout/stderr bytes are `hash_mismatch` on the node (it checks the result's bytes as
 * an expectation before the fields) and `result_mismatch` in the SDK ("stdout_text: ..." or,
 * with the text edited to match, "stdout sha256: ..."), which treats everything the result
 * says as a claim to check against the receipt.
 *
 * @large
 */
final class ResultVerificationParityTest extends DaemonTestCase
{
    public function test_the_node_and_the_sdk_refuse_each_edited_field_alike(): void
    {
        $client = $this->client();
        $manifest = Manifest::fromFile(Daemon::exampleWasm('exit3'));
        $result = $client->run($manifest, timeoutSeconds: 30);
        self::assertTrue($client->verifyResult($result)['valid']);

        $edits = [
            'job_id' => static fn (array &$r) => $r['job_id'] = str_repeat('f', 32),
            'executor' => static fn (array &$r) => $r['executor'] = substr($r['executor'], 0, -1) . 'x',
            'module_sha256' => static fn (array &$r) => $r['module_sha256'] = str_repeat('0', 64),
            'outcome.kind' => static fn (array &$r) => $r['outcome']['kind'] = 'ok',
            'outcome.exit_code' => static fn (array &$r) => $r['outcome']['exit_code'] = 0,
            'outcome.message' => static fn (array &$r) => $r['outcome']['message'] = 'all fine',
            'fuel_consumed' => static fn (array &$r) => $r['fuel_consumed']++,
            'fuel_consumed as text' => static fn (array &$r) => $r['fuel_consumed'] = (string) $r['fuel_consumed'],
            'fuel_consumed as a float' => static fn (array &$r) => $r['fuel_consumed'] = (float) $r['fuel_consumed'],
            'wall_time_us' => static fn (array &$r) => $r['wall_time_us'] = 1,
            'stdout_truncated' => static fn (array &$r) => $r['stdout_truncated'] = true,
            'stderr_truncated' => static fn (array &$r) => $r['stderr_truncated'] = 1,
            'outputs_truncated' => static fn (array &$r) => $r['outputs_truncated'] = true,
            'outputs' => static fn (array &$r) => $r['outputs'] = [['path' => '/output/x', 'size' => 0, 'sha256' => str_repeat('0', 64)]],
            'stdout_text' => static fn (array &$r) => $r['stdout_text'] = "all is well\n",
            'stderr_text' => static fn (array &$r) => $r['stderr_text'] = 'w' . str_repeat("\u{00e9}", 300),
        ];
        $disagreements = [];
        foreach ($edits as $name => $edit) {
            $edited = $result->raw;
            $edit($edited);
            $node = $client->verifyResult($edited);
            try {
                Result::fromArray($edited)->verifyReceipt($manifest);
                $sdk = ['reason' => null, 'message' => null];
            } catch (VerificationException $e) {
                $sdk = ['reason' => $e->getReason(), 'message' => $e->getDetail()];
            }
            self::assertFalse($node['valid'], $name);
            self::assertSame('result_mismatch', $sdk['reason'], $name);
            if ([$node['reason'], $node['message']] !== [$sdk['reason'], $sdk['message']]) {
                $disagreements[$name] = ['node' => [$node['reason'], $node['message']], 'sdk' => [$sdk['reason'], $sdk['message']]];
            }
        }

        self::assertSame([], $disagreements);
    }

    public function test_edited_output_bytes_with_their_text_are_hash_mismatch_on_the_node_and_result_mismatch_here(): void
    {
        $client = $this->client();
        $manifest = Manifest::fromFile(Daemon::helloWasm())->withStdin('bytes');
        $edited = $client->run($manifest, timeoutSeconds: 30)->raw;
        $edited['stdout'] = base64_encode("forged\n");
        $edited['stdout_text'] = "forged\n";

        self::assertSame('hash_mismatch', $client->verifyResult($edited)['reason']);
        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('receipt rejected (result_mismatch): stdout sha256: result says');
        Result::fromArray($edited)->verifyReceipt($manifest);
    }
}
