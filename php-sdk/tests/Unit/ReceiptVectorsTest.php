<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Cose\Sign1;
use Plasm\Exception\VerificationException;
use Plasm\Identity\PeerId;
use Plasm\Manifest;
use Plasm\Receipt;
use PHPUnit\Framework\TestCase;

/**
 * The cross-language vectors tests/vectors/receipt-vectors.json, written by the Python signer
 * (tests/vectors/make_receipt_vectors.py, checked with --check in CI): every valid receipt
 * verifies here with the same fields, and every tampered one fails with the same reason the
 * Python verifier gives.
 *
 * @small
 */
final class ReceiptVectorsTest extends TestCase
{
    private const FILE = __DIR__ . '/../../../tests/vectors/receipt-vectors.json';

    /** @return array<string, mixed> */
    private static function vectors(): array
    {
        static $vectors = null;
        if ($vectors === null) {
            $text = @file_get_contents(self::FILE);
            if ($text === false) {
                throw new \RuntimeException('missing ' . self::FILE . '; generate it with tests/vectors/make_receipt_vectors.py');
            }
            $vectors = json_decode($text, true, 512, JSON_THROW_ON_ERROR);
        }
        return $vectors;
    }

    /** @return array<string, array{array<string, mixed>}> */
    public static function validVectors(): array
    {
        $out = [];
        foreach (self::vectors()['valid'] as $vector) {
            $out[$vector['name']] = [$vector];
        }
        return $out;
    }

    /** @return array<string, array{array<string, mixed>}> */
    public static function tamperedVectors(): array
    {
        $out = [];
        foreach (self::vectors()['tampered'] as $vector) {
            $out[$vector['name']] = [$vector];
        }
        return $out;
    }

    public function test_the_vector_file_has_valid_and_tampered_receipts(): void
    {
        self::assertNotEmpty(self::vectors()['valid']);
        self::assertNotEmpty(self::vectors()['tampered']);
    }

    public function test_peer_ids_of_the_vector_keys_match_python(): void
    {
        foreach (self::vectors()['keys'] as $name => $key) {
            $public = sodium_crypto_sign_publickey(sodium_crypto_sign_seed_keypair(hex2bin($key['seed'])));
            self::assertSame($key['public_key'], bin2hex($public), $name);
            self::assertSame($key['peer_id'], PeerId::fromPublicKey($public), $name);
        }
    }

    public function test_every_reason_python_gives_for_a_receipt_has_a_tampered_vector(): void
    {
        $reasons = array_unique(array_column(self::vectors()['tampered'], 'reason'));
        sort($reasons);

        self::assertSame(['bad_signature', 'executor_mismatch', 'hash_mismatch', 'job_id_mismatch', 'key_mismatch', 'malformed', 'nonce_mismatch', 'unsupported_version'], $reasons);
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_a_python_signed_receipt_verifies_with_everything_it_commits_to(array $vector): void
    {
        $receipt = Receipt::verifyBase64(
            $vector['cose'],
            moduleSha256: hash('sha256', base64_decode($vector['module'])),
            stdout: base64_decode($vector['stdout']),
            stderr: base64_decode($vector['stderr']),
            executor: $vector['expected']['executor'],
            jobId: $vector['expected']['job_id'],
            nonce: hex2bin($vector['expected']['nonce']),
            inputSha256: self::manifestOf($vector)->inputSha256(),
            outputs: self::files($vector['outputs']),
        );

        self::assertSame($vector['expected']['module_sha256'], $receipt->moduleSha256);
        self::assertSame(['executor', 'job id', 'nonce', 'module hash', 'input hash', 'stdout', 'stderr', 'output files'], $receipt->checkedExpectations());
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_a_python_signed_receipt_decodes_to_the_body_python_reports(array $vector): void
    {
        $receipt = Receipt::verifyJson($vector['receipt_json']);

        self::assertSame(self::sorted($vector['receipt_json']['body']), self::sorted($receipt->bodyJson()));
        self::assertSame($vector['receipt_json']['executor'], $receipt->executor);
        self::assertSame($vector['receipt_json']['cose'], $vector['cose']);
        self::assertSame(base64_decode($vector['cose']), $receipt->cose);
        self::assertSame(self::vectors()['keys']['executor']['public_key'], bin2hex($receipt->publicKey));
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_the_sdk_re_signs_the_same_payload_to_the_same_bytes(array $vector): void
    {
        // Ed25519 is deterministic: the SDK's own COSE encoding of the vector's payload,
        // signed with the vector key, must be the vector byte for byte.
        $receipt = Receipt::verifyBase64($vector['cose']);
        $pair = sodium_crypto_sign_seed_keypair(hex2bin(self::vectors()['keys']['executor']['seed']));
        $protected = Sign1::protectedHeader(Receipt::CONTENT_TYPE, $receipt->executor);
        $signature = sodium_crypto_sign_detached(Sign1::sigStructure($protected, $receipt->payload), sodium_crypto_sign_secretkey($pair));

        self::assertSame($vector['cose'], base64_encode(Sign1::encode($protected, $receipt->payload, $signature)));
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_the_input_hash_of_the_same_input_matches_python(array $vector): void
    {
        $manifest = self::manifestOf($vector);

        self::assertSame($vector['receipt_json']['body']['input_sha256'], $manifest->inputSha256());
    }

    public function test_the_vector_with_input_files_has_them_in_its_input_hash(): void
    {
        $vector = self::vectors()['valid'][array_search('ok_with_input_and_output_files', array_column(self::vectors()['valid'], 'name'), true)];
        $manifest = self::manifestOf($vector);

        self::assertCount(2, $manifest->inputFiles());
        self::assertSame($vector['receipt_json']['body']['input_sha256'], $manifest->inputSha256());
        self::assertNotSame($manifest->inputSha256(), $manifest->withInputBytes('/input/another', '')->inputSha256());
        self::assertCount(2, Receipt::verifyBase64($vector['cose'], outputs: self::files($vector['outputs']))->outputs);
    }

    /**
     * @dataProvider validVectors
     * @param array<string, mixed> $vector
     */
    public function test_a_python_signed_receipt_fails_against_other_output_files(array $vector): void
    {
        $files = self::files($vector['outputs']) + ['/output/not-made-by-the-job' => ''];

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('hash_mismatch');

        Receipt::verifyBase64($vector['cose'], outputs: $files);
    }

    public function test_a_python_signed_receipt_fails_against_another_input(): void
    {
        $vector = self::vectors()['valid'][0];
        $manifest = self::manifestOf($vector)->withStdin('not the input');

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('hash_mismatch');

        Receipt::verifyBase64($vector['cose'], inputSha256: $manifest->inputSha256());
    }

    /**
     * @dataProvider tamperedVectors
     * @param array<string, mixed> $vector
     */
    public function test_a_tampered_receipt_fails_with_the_reason_python_gives(array $vector): void
    {
        $with = $vector['verify_with'];
        self::assertSame([], array_diff(array_keys($with), ['expected_module_sha256', 'stdout', 'stderr', 'expected_executor', 'expected_job_id', 'expected_nonce', 'outputs']), 'an expectation this test does not know');
        try {
            Receipt::verifyBase64(
                $vector['cose'],
                moduleSha256: $with['expected_module_sha256'] ?? null,
                stdout: isset($with['stdout']) ? base64_decode($with['stdout']) : null,
                stderr: isset($with['stderr']) ? base64_decode($with['stderr']) : null,
                executor: $with['expected_executor'] ?? null,
                jobId: $with['expected_job_id'] ?? null,
                nonce: isset($with['expected_nonce']) ? hex2bin($with['expected_nonce']) : null,
                outputs: isset($with['outputs']) ? self::files($with['outputs']) : null,
            );
        } catch (VerificationException $e) {
            self::assertSame($vector['reason'], $e->getReason(), $e->getMessage());
            return;
        }
        self::fail("tampered vector {$vector['name']} verified");
    }

    /**
     * The manifest whose input is the vector's `input` (stdin, args, env, module name, files).
     *
     * @param array<string, mixed> $vector
     */
    private static function manifestOf(array $vector): Manifest
    {
        $input = $vector['input'];
        $manifest = Manifest::fromBytes(base64_decode($vector['module']))
            ->withModuleName($input['module_name'])
            ->withStdin(base64_decode($input['stdin']))
            ->withArgs(...$input['args'])
            ->withEnv($input['env']);
        foreach ($input['files'] as $file) {
            $manifest = $manifest->withInputBytes($file['path'], base64_decode($file['content'], true));
        }
        $determinism = $input['determinism'];
        if ($determinism === null) {
            return $manifest->withoutDeterminism();
        }
        $seed = $determinism['seed'] === null ? null : hex2bin($determinism['seed']);
        return $manifest->withDeterminism($seed, $determinism['epoch_ms']);
    }

    /**
     * @param list<array{path: string, content: string}> $list
     * @return array<string, string> path => bytes
     */
    private static function files(array $list): array
    {
        $files = [];
        foreach ($list as $file) {
            $files[$file['path']] = base64_decode($file['content'], true);
        }
        return $files;
    }

    /**
     * @param array<string, mixed> $map
     * @return array<string, mixed> the map with keys sorted at every level
     */
    private static function sorted(array $map): array
    {
        ksort($map);
        foreach ($map as $key => $value) {
            if (is_array($value)) {
                $map[$key] = self::sorted($value);
            }
        }
        return $map;
    }
}
