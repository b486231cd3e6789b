<?php

declare(strict_types=1);

namespace Plasm\Tests\Integration;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Decoder;
use Plasm\Cbor\Encoder;
use Plasm\Cbor\Map;
use Plasm\Cose\Sign1;
use Plasm\Exception\VerificationException;
use Plasm\Receipt;
use Plasm\Tests\Support\Daemon;
use PHPUnit\Framework\TestCase;

/**
 * Differential test: hundreds of broken receipts — bytes flipped, cut or added, and bodies
 * with one field changed to another type or value and then validly signed — go to both the
 * SDK's Receipt::verify() and the Python verifier (protocol/receipt.py verify_envelope, run by
 * the interpreter of the plasmd under test), and both must give the same verdict and reason.
 *
 * @large
 */
final class PythonVerifierParityTest extends TestCase
{
    private const VECTORS = __DIR__ . '/../../../tests/vectors/receipt-vectors.json';
    private const PYTHON_VERIFIER = <<<'PY'
import base64, json, sys
from plasm.protocol.errors import ReceiptError
from plasm.protocol.receipt import verify_envelope
verdicts = []
for item in json.load(sys.stdin):
    try:
        verify_envelope(base64.b64decode(item))
        verdicts.append("valid")
    except ReceiptError as exc:
        verdicts.append(exc.reason)
    except Exception as exc:  # a crash is a finding too
        verdicts.append(f"crash: {type(exc).__name__}: {exc}")
print(json.dumps(verdicts))
PY;

    public function test_the_sdk_and_the_python_verifier_agree_on_every_broken_receipt(): void
    {
        $python = self::python();
        $vectors = json_decode((string) file_get_contents(self::VECTORS), true, 512, JSON_THROW_ON_ERROR);
        $seed = hex2bin($vectors['keys']['executor']['seed']);
        $cases = [];
        foreach ($vectors['valid'] as $vector) {
            $cases += self::byteMutations($vector['name'], base64_decode($vector['cose']));
            $cases += self::bodyMutations($vector['name'], base64_decode($vector['cose']), $seed);
        }
        foreach ($vectors['tampered'] as $vector) {
            $cases['tampered ' . $vector['name']] = base64_decode($vector['cose']);
        }

        $pythonVerdicts = self::askPython($python, array_values($cases));
        $disagreements = [];
        $reasons = [];
        foreach (array_keys($cases) as $i => $name) {
            try {
                Receipt::verify($cases[$name]);
                $sdk = 'valid';
            } catch (VerificationException $e) {
                $sdk = $e->getReason();
            }
            $reasons[$sdk] = true;
            if ($sdk !== $pythonVerdicts[$i]) {
                $disagreements[] = sprintf('%s: SDK %s, Python %s', $name, $sdk, $pythonVerdicts[$i]);
            }
        }

        self::assertGreaterThan(3000, count($cases), (string) count($cases));
        self::assertSame([], $disagreements);
        ksort($reasons);
        self::assertSame(['bad_signature', 'key_mismatch', 'malformed', 'unsupported_version', 'valid'], array_keys($reasons));
    }

    /** @return array<string, string> */
    private static function byteMutations(string $name, string $cose): array
    {
        $cases = [];
        $n = strlen($cose);
        for ($i = 0; $i < $n; $i += max(1, intdiv($n, 40))) {
            foreach ([0x01, 0x20, 0x80] as $bit) {
                $flipped = $cose;
                $flipped[$i] = chr(ord($flipped[$i]) ^ $bit);
                $cases["$name byte $i ^ $bit"] = $flipped;
            }
            $cases["$name without byte $i"] = substr($cose, 0, $i) . substr($cose, $i + 1);
            $cases["$name cut at $i"] = substr($cose, 0, $i);
        }
        return $cases;
    }

    /** @return array<string, string> each body changed in one place, then validly signed */
    private static function bodyMutations(string $name, string $cose, string $seed): array
    {
        $signed = Sign1::decode($cose, 1 << 20);
        $body = self::plain(Decoder::decode($signed->payload));
        $values = [
            'zero' => 0, 'minus one' => -1, 'one' => 1, 'big' => 1 << 62, 'empty text' => '', 'text' => 'x',
            'empty bytes' => new ByteString(''), 'bytes32' => new ByteString(str_repeat("\1", 32)),
            'bytes16' => new ByteString(str_repeat("\1", 16)), 'null' => null, 'true' => true,
            'empty list' => [], 'empty map' => new Map(),
        ];
        $cases = [];
        $sign = static function (string $payload) use ($seed, $signed): string {
            $protected = Sign1::protectedHeader(Receipt::CONTENT_TYPE, $signed->kid);
            $secret = sodium_crypto_sign_secretkey(sodium_crypto_sign_seed_keypair($seed));
            return Sign1::encode($protected, $payload, sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $secret));
        };
        $cases["$name re-signed unchanged"] = $sign($signed->payload);
        foreach (array_keys($body) as $field) {
            foreach ($values as $label => $value) {
                $cases["$name $field = $label"] = $sign(Encoder::encode(array_merge($body, [$field => $value])));
            }
            $without = $body;
            unset($without[$field]);
            $cases["$name without $field"] = $sign(Encoder::encode($without));
        }
        foreach (['limits', 'engine'] as $record) {
            foreach (array_keys($body[$record]) as $field) {
                foreach (['zero' => 0, 'text' => 'x', 'minus one' => -1] as $label => $value) {
                    $changed = $body;
                    $changed[$record][$field] = $value;
                    $cases["$name $record.$field = $label"] = $sign(Encoder::encode($changed));
                }
                $changed = $body;
                unset($changed[$record][$field]);
                $cases["$name without $record.$field"] = $sign(Encoder::encode($changed));
            }
        }
        $outputs = [
            'outside /output' => [['path' => '/tmp/x', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32))]],
            'path /output/' => [['path' => '/output/', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32))]],
            'negative size' => [['path' => '/output/x', 'size' => -1, 'sha256' => new ByteString(str_repeat("\0", 32))]],
            'short hash' => [['path' => '/output/x', 'size' => 0, 'sha256' => new ByteString('x')]],
            'extra key' => [['path' => '/output/x', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32)), 'mode' => 1]],
            'unsorted' => [['path' => '/output/b', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32))], ['path' => '/output/a', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32))]],
            'twice' => [['path' => '/output/a', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32))], ['path' => '/output/a', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32))]],
            'valid' => [['path' => '/output/a', 'size' => 0, 'sha256' => new ByteString(str_repeat("\0", 32))], ['path' => '/output/é', 'size' => 1, 'sha256' => new ByteString(str_repeat("\0", 32))]],
            'not a map' => [1],
        ];
        foreach ($outputs as $label => $list) {
            $cases["$name outputs $label"] = $sign(Encoder::encode(array_merge($body, ['outputs' => $list])));
        }
        foreach (['v = 3' => ['v' => 3], 'v = 1' => ['v' => 1], 'v = -2' => ['v' => -2], 'profile' => ['profile' => 'wasi-p1-det/2'], 'outcome' => ['outcome' => 'OK'], 'job id' => ['job_id' => strtoupper($body['job_id'])], 'extra field' => ['extra' => 1]] as $label => $change) {
            $cases["$name $label"] = $sign(Encoder::encode(array_merge($body, $change)));
        }
        $cases["$name payload a list"] = $sign(Encoder::encode([1]));
        $cases["$name payload empty"] = $sign('');
        $cases["$name payload a float"] = $sign("\xfb" . pack('E', 1.5));
        $cases["$name payload with a tag"] = $sign("\xc1\x00");
        return $cases;
    }

    /** A decoded Map as PHP arrays (maps inside too), for array_merge and re-encoding. */
    private static function plain(mixed $value): mixed
    {
        if ($value instanceof Map) {
            $out = [];
            foreach ($value as $key => $item) {
                $out[$key] = self::plain($item);
            }
            return $out === [] ? new Map() : $out;
        }
        return is_array($value) ? array_map([self::class, 'plain'], $value) : $value;
    }

    private static function python(): string
    {
        $binary = Daemon::findBinary();
        $python = $binary === null ? null : dirname((string) realpath($binary)) . '/python';
        if ($python === null || !is_executable($python)) {
            self::markTestSkipped('no Python interpreter beside the plasmd under test to run its verifier');
        }
        return $python;
    }

    /**
     * @param list<string> $items
     * @return list<string> the Python verifier's verdict for each
     */
    private static function askPython(string $python, array $items): array
    {
        $process = proc_open([$python, '-c', self::PYTHON_VERIFIER], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        self::assertIsResource($process);
        fwrite($pipes[0], json_encode(array_map('base64_encode', $items), JSON_THROW_ON_ERROR));
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $status = proc_close($process);
        self::assertSame(0, $status, "the Python verifier failed:\n$err");
        $verdicts = json_decode((string) $out, true, 512, JSON_THROW_ON_ERROR);
        self::assertCount(count($items), $verdicts);
        return $verdicts;
    }
}
