<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Encoder;
use Plasm\Cose\Sign1;
use Plasm\Exception\VerificationException;
use Plasm\Receipt;
use Plasm\Tests\Support\Omit;
use Plasm\Tests\Support\ReceiptFactory;
use PHPUnit\Framework\TestCase;

/** @small */
final class ReceiptVerificationTest extends TestCase
{
    private ReceiptFactory $factory;

    protected function setUp(): void
    {
        $this->factory = new ReceiptFactory();
    }

    public function test_a_signed_receipt_verifies_and_exposes_its_fields(): void
    {
        $receipt = Receipt::verify($this->factory->cose());

        self::assertSame(ReceiptFactory::JOB_ID, $receipt->jobId);
        self::assertSame($this->factory->moduleSha256(), $receipt->moduleSha256);
        self::assertSame($this->factory->peerId(), $receipt->executor);
        self::assertSame($this->factory->peerId(), $receipt->signerPeerId());
        self::assertSame('ok', $receipt->outcome);
        self::assertSame(1234, $receipt->fuelConsumed);
        self::assertTrue($receipt->fuelExact);
        self::assertSame('wasi-p1-det/1', $receipt->profile);
        self::assertSame(ReceiptFactory::limits(), $receipt->limits);
        self::assertSame(ReceiptFactory::outputsJson(), $receipt->outputs);
        self::assertFalse($receipt->outputsTruncated);
        self::assertSame(ReceiptFactory::NONCE, $receipt->nonce);
    }

    public function test_a_receipt_verifies_against_the_module_output_and_files_the_client_holds(): void
    {
        $receipt = Receipt::verify(
            $this->factory->cose(),
            moduleSha256: $this->factory->moduleSha256(),
            stdout: ReceiptFactory::STDOUT,
            stderr: ReceiptFactory::STDERR,
            executor: $this->factory->peerId(),
            jobId: ReceiptFactory::JOB_ID,
            nonce: ReceiptFactory::NONCE,
            outputs: ReceiptFactory::OUTPUTS,
        );

        self::assertSame(strlen(ReceiptFactory::STDOUT), $receipt->stdoutLen);
        self::assertContains('output files', $receipt->checkedExpectations());
    }

    public function test_the_sdk_signs_what_any_cose_library_would_check(): void
    {
        $cose = $this->factory->cose();
        $signed = Sign1::decode($cose, 1 << 20);

        // 18([h'a3 01 27 03 ... 04 ...', {}, payload, signature]) as RFC 9052 lays it out.
        self::assertSame("\xd2\x84", substr($cose, 0, 2));
        self::assertSame(Receipt::CONTENT_TYPE, $signed->contentType);
        self::assertSame($this->factory->peerId(), $signed->kid);
        self::assertSame("\xa3\x01\x27\x03", substr($signed->protected, 0, 4));
        self::assertTrue(sodium_crypto_sign_verify_detached(
            $signed->signature,
            "\x84\x6aSignature1" . Encoder::encode(new ByteString($signed->protected)) . "\x40" . Encoder::encode(new ByteString($signed->payload)),
            $this->factory->publicKey,
        ));
    }

    public function test_changing_any_byte_of_the_receipt_makes_verification_fail(): void
    {
        $cose = $this->factory->cose();
        $accepted = [];
        for ($i = 0, $n = strlen($cose); $i < $n; $i++) {
            foreach ([0x01, 0x80] as $bit) {
                $tampered = $cose;
                $tampered[$i] = chr(ord($tampered[$i]) ^ $bit);
                try {
                    Receipt::verify($tampered);
                    $accepted[] = sprintf('byte %d ^ 0x%02x', $i, $bit);
                } catch (VerificationException) {
                    // expected
                }
            }
        }

        self::assertSame([], $accepted, 'tampered receipts were accepted');
    }

    public function test_a_signature_by_another_key_fails_as_bad_signature(): void
    {
        $other = new ReceiptFactory('another-seed-of-thirty-two-bytes');
        $payload = Encoder::encode($this->factory->body());
        $protected = Sign1::protectedHeader(Receipt::CONTENT_TYPE, $this->factory->peerId());

        $this->expectVerificationFailure('bad_signature');

        Receipt::verify($this->factory->seal($payload, sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $other->secretKey)));
    }

    public function test_a_signature_over_the_payload_instead_of_the_sig_structure_fails(): void
    {
        $payload = Encoder::encode($this->factory->body());

        $this->expectVerificationFailure('bad_signature');

        Receipt::verify($this->factory->seal($payload, sodium_crypto_sign_detached($payload, $this->factory->secretKey)));
    }

    public function test_a_receipt_signed_by_a_key_that_is_not_the_executor_fails_as_key_mismatch(): void
    {
        $impostor = new ReceiptFactory('impostor-seed-of-thirty-two-byte');
        $payload = Encoder::encode($this->factory->body()); // names the honest peer as executor

        $this->expectVerificationFailure('key_mismatch');

        Receipt::verify($impostor->seal($payload));
    }

    public function test_a_kid_that_is_no_peer_id_fails_as_malformed(): void
    {
        $payload = Encoder::encode($this->factory->body(['executor' => 'not-a-peer-id']));

        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->seal($payload, kid: 'not-a-peer-id'));
    }

    public function test_another_content_type_fails_as_malformed(): void
    {
        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->seal(Encoder::encode($this->factory->body()), contentType: 'application/vnd.plasm.capabilities+cbor'));
    }

    public function test_a_module_the_client_did_not_send_fails_as_hash_mismatch(): void
    {
        $this->expectVerificationFailure('hash_mismatch');

        Receipt::verify($this->factory->cose(), moduleSha256: hash('sha256', 'another module'));
    }

    public function test_stdout_that_differs_from_the_signed_hash_fails_as_hash_mismatch(): void
    {
        $this->expectVerificationFailure('hash_mismatch');

        Receipt::verify($this->factory->cose(), stdout: "dlroW ,olleh\n");
    }

    public function test_stderr_that_differs_from_the_signed_hash_fails_as_hash_mismatch(): void
    {
        $this->expectVerificationFailure('hash_mismatch');

        Receipt::verify($this->factory->cose(), stderr: 'warning');
    }

    /** @return array<string, array{array<string, string>, string}> output files given, and what the message names */
    public static function wrongOutputFiles(): array
    {
        $files = ReceiptFactory::OUTPUTS;
        return [
            'one missing' => [array_slice($files, 1, null, true), '/output/a.txt is missing'],
            'one extra' => [$files + ['/output/zzz' => ''], '/output/zzz is not in the receipt'],
            'other bytes' => [['/output/a.txt' => "alpha?\n"] + $files, '/output/a.txt is not the one the receipt signs'],
            'same size, other bytes' => [['/output/sub/b.bin' => "\x00\xfe"] + $files, '/output/sub/b.bin is not the one'],
            'none' => [[], 'is missing'],
        ];
    }

    /**
     * @dataProvider wrongOutputFiles
     * @param array<string, string> $files
     */
    public function test_output_files_that_are_not_the_receipts_fail_as_hash_mismatch(array $files, string $names): void
    {
        $this->expectVerificationFailure('hash_mismatch');
        $this->expectExceptionMessage($names);

        Receipt::verify($this->factory->cose(), outputs: $files);
    }

    public function test_an_unexpected_executor_fails(): void
    {
        $this->expectVerificationFailure('executor_mismatch');

        Receipt::verify($this->factory->cose(), executor: (new ReceiptFactory('another-seed-of-thirty-two-bytes'))->peerId());
    }

    public function test_an_unexpected_job_id_fails(): void
    {
        $this->expectVerificationFailure('job_id_mismatch');

        Receipt::verify($this->factory->cose(), jobId: str_repeat('0', 32));
    }

    public function test_an_unexpected_nonce_fails(): void
    {
        $this->expectVerificationFailure('nonce_mismatch');

        Receipt::verify($this->factory->cose(), nonce: str_repeat("\0", 16));
    }

    /** @return array<string, array{array<string, mixed>}> body changes, each signed correctly */
    public static function malformedBodies(): array
    {
        $output = static fn (array $change): array => ['outputs' => [array_merge(['path' => '/output/a', 'size' => 0, 'sha256' => new ByteString(hash('sha256', '', true))], $change)]];
        return [
            'missing field' => [['fuel_consumed' => new Omit()]],
            'missing fuel_exact' => [['fuel_exact' => new Omit()]],
            'missing outputs' => [['outputs' => new Omit()]],
            'unknown extra field' => [['extra' => 1]],
            'zero fuel limit' => [['limits' => ReceiptFactory::limits(['fuel' => 0])]],
            'limits without a v2 field' => [['limits' => array_diff_key(ReceiptFactory::limits(), ['max_output_files' => 0])]],
            'limits of version 1' => [['limits' => ['fuel' => 1, 'memory_bytes' => 1, 'timeout_ms' => 1, 'max_output_bytes' => 1]]],
            'executor missing' => [['executor' => new Omit()]],
            'text where bytes belong' => [['module_sha256' => str_repeat('a', 32)]],
            'short hash' => [['stdout_sha256' => new ByteString(str_repeat("\0", 31))]],
            'short nonce' => [['nonce' => new ByteString('short')]],
            'negative length' => [['stdout_len' => -1]],
            'bool as int' => [['stdout_truncated' => 0]],
            'unknown outcome' => [['outcome' => 'exploded']],
            'unknown profile' => [['profile' => 'wasi-p2/1']],
            'job id not hex' => [['job_id' => 'not-a-job-id-not-a-job-id-123456']],
            'engine version not text' => [['engine' => ['name' => 'wasmtime', 'version' => 50]]],
            'exit code as text' => [['exit_code' => '3']],
            'outputs not a list' => [['outputs' => ['path' => '/output/a']]],
            'output outside /output/' => [$output(['path' => '/tmp/a'])],
            'output path /output itself' => [$output(['path' => '/output'])],
            'output size negative' => [$output(['size' => -1])],
            'output sha256 as text' => [$output(['sha256' => str_repeat('0', 64)])],
            'output sha256 short' => [$output(['sha256' => new ByteString('x')])],
            'output with an extra field' => [$output(['mode' => 420])],
            'outputs not sorted' => [['outputs' => array_reverse((new ReceiptFactory())->body()['outputs'])]],
            'an output twice' => [['outputs' => [(new ReceiptFactory())->body()['outputs'][0], (new ReceiptFactory())->body()['outputs'][0]]]],
            'v as text' => [['v' => '2']],
        ];
    }

    /**
     * @dataProvider malformedBodies
     * @param array<string, mixed> $overrides
     */
    public function test_a_correctly_signed_body_of_the_wrong_shape_fails(array $overrides): void
    {
        $reason = ($overrides['v'] ?? 2) !== 2 ? 'unsupported_version' : 'malformed';
        $this->expectVerificationFailure($reason);

        Receipt::verify($this->factory->cose($overrides));
    }

    public function test_a_correctly_signed_body_of_version_1_fails_as_unsupported_version(): void
    {
        $this->expectVerificationFailure('unsupported_version');

        Receipt::verify($this->factory->cose(['v' => 1]));
    }

    public function test_a_version_1_envelope_fails_as_unsupported_version_saying_so(): void
    {
        $payload = Encoder::encode($this->factory->body(['v' => 1]));
        $envelope = Encoder::encode([
            'v' => 1,
            'body' => new ByteString($payload),
            'sig' => new ByteString(sodium_crypto_sign_detached("plasm/receipt/v1\x00" . $payload, $this->factory->secretKey)),
            'key' => new ByteString($this->factory->publicKey),
        ]);

        $this->expectVerificationFailure('unsupported_version');
        $this->expectExceptionMessage('version 1 receipt');

        Receipt::verify($envelope);
    }

    public function test_a_version_1_json_receipt_fails_as_unsupported_version(): void
    {
        $this->expectVerificationFailure('unsupported_version');

        Receipt::verifyJson(['envelope' => base64_encode('x'), 'body' => [], 'signature' => '', 'public_key' => '']);
    }

    public function test_the_json_form_verifies_by_its_cose_alone(): void
    {
        $json = $this->factory->jobResult()['receipt'];
        $json['body']['fuel_consumed'] = 1; // for people only: never read

        self::assertSame(1234, Receipt::verifyJson($json)->fuelConsumed);
        self::assertSame(Receipt::verify($this->factory->cose())->bodyJson(), $this->factory->jobResult()['receipt']['body']);
    }

    public function test_a_body_in_another_key_order_validly_signed_fails_as_malformed(): void
    {
        $body = $this->factory->body();
        ksort($body); // bytewise, not length-first: not canonical
        $payload = Encoder::head(5, count($body));
        foreach ($body as $key => $value) {
            $payload .= Encoder::encode($key) . Encoder::encode($value);
        }

        $this->expectVerificationFailure('malformed');
        $this->expectExceptionMessage('canonical');

        Receipt::verify($this->factory->seal($payload));
    }

    public function test_a_body_with_a_number_in_long_form_validly_signed_fails_as_malformed(): void
    {
        $canonical = Encoder::encode($this->factory->body());
        // fuel_consumed 1234 = 19 04 d2 rewritten as the 4-byte form 1a 00 00 04 d2.
        $key = Encoder::encode('fuel_consumed');
        $payload = str_replace($key . "\x19\x04\xd2", $key . "\x1a\x00\x00\x04\xd2", $canonical);
        self::assertNotSame($canonical, $payload);

        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->seal($payload));
    }

    public function test_a_correctly_signed_body_with_trailing_bytes_fails_as_malformed(): void
    {
        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->seal(Encoder::encode($this->factory->body()) . "\x00"));
    }

    public function test_a_correctly_signed_body_with_a_duplicate_key_fails_as_malformed(): void
    {
        $body = $this->factory->body();
        $payload = Encoder::encode($body);
        // Rewrite the map header to one more entry and append "v": 2 again.
        $duplicated = Encoder::head(5, count($body) + 1) . substr($payload, 2) . Encoder::encode('v') . Encoder::encode(2);

        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->seal($duplicated));
    }

    /** @return array<string, array{callable(string, ReceiptFactory): string}> ways to break the COSE structure */
    public static function malformedCose(): array
    {
        $parts = static function (ReceiptFactory $f): array {
            $payload = Encoder::encode($f->body());
            $protected = Sign1::protectedHeader(Receipt::CONTENT_TYPE, $f->peerId());
            return [$protected, $payload, sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $f->secretKey)];
        };
        $bytes = static fn (string $b): string => Encoder::encode(new ByteString($b));
        return [
            'trailing byte' => [static fn (string $cose): string => $cose . "\x00"],
            'truncated' => [static fn (string $cose): string => substr($cose, 0, -1)],
            'empty' => [static fn (): string => ''],
            'untagged' => [static fn (string $cose): string => substr($cose, 1)],
            'another tag' => [static fn (string $cose): string => "\xd1" . substr($cose, 1)],
            'tag in long form' => [static fn (string $cose): string => "\xd8\x12" . substr($cose, 1)],
            'array of 5' => [static fn (string $cose): string => "\xd2\x85" . substr($cose, 2) . "\xf6"],
            'unprotected header not empty' => [static function (string $cose, ReceiptFactory $f) use ($parts, $bytes): string {
                [$protected, $payload, $sig] = $parts($f);
                return "\xd2\x84" . $bytes($protected) . "\xa1\x04\x41x" . $bytes($payload) . $bytes($sig);
            }],
            'short signature' => [static function (string $cose, ReceiptFactory $f) use ($parts): string {
                [$protected, $payload, $sig] = $parts($f);
                return Sign1::encode($protected, $payload, substr($sig, 0, 63));
            }],
            'protected header in another key order' => [static function (string $cose, ReceiptFactory $f) use ($parts, $bytes): string {
                [, $payload] = $parts($f);
                $protected = "\xa3\x04" . $bytes($f->peerId()) . "\x03" . Encoder::encode(Receipt::CONTENT_TYPE) . "\x01\x27";
                return Sign1::encode($protected, $payload, sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $f->secretKey));
            }],
            'protected header with an extra parameter' => [static function (string $cose, ReceiptFactory $f) use ($parts, $bytes): string {
                [, $payload] = $parts($f);
                $protected = "\xa4\x01\x27\x03" . Encoder::encode(Receipt::CONTENT_TYPE) . "\x04" . $bytes($f->peerId()) . "\x05\x40";
                return Sign1::encode($protected, $payload, sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $f->secretKey));
            }],
            'another algorithm' => [static function (string $cose, ReceiptFactory $f) use ($parts, $bytes): string {
                [, $payload] = $parts($f);
                $protected = "\xa3\x01\x26\x03" . Encoder::encode(Receipt::CONTENT_TYPE) . "\x04" . $bytes($f->peerId());
                return Sign1::encode($protected, $payload, sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $f->secretKey));
            }],
            'kid as text' => [static function (string $cose, ReceiptFactory $f) use ($parts): string {
                [, $payload] = $parts($f);
                $protected = "\xa3\x01\x27\x03" . Encoder::encode(Receipt::CONTENT_TYPE) . "\x04" . Encoder::encode($f->peerId());
                return Sign1::encode($protected, $payload, sodium_crypto_sign_detached(Sign1::sigStructure($protected, $payload), $f->secretKey));
            }],
            'payload length in long form' => [static function (string $cose, ReceiptFactory $f) use ($parts, $bytes): string {
                [$protected, $payload, $sig] = $parts($f);
                return "\xd2\x84" . $bytes($protected) . "\xa0" . "\x5a" . pack('N', strlen($payload)) . $payload . $bytes($sig);
            }],
            'signature as an indefinite-length string' => [static function (string $cose, ReceiptFactory $f) use ($parts, $bytes): string {
                [$protected, $payload, $sig] = $parts($f);
                return "\xd2\x84" . $bytes($protected) . "\xa0" . $bytes($payload) . "\x5f" . $bytes($sig) . "\xff";
            }],
            'payload not a map' => [static function (string $cose, ReceiptFactory $f): string {
                return $f->seal(Encoder::encode([1, 2, 3]));
            }],
            'payload not cbor' => [static function (string $cose, ReceiptFactory $f): string {
                return $f->seal("\xff");
            }],
        ];
    }

    /**
     * @dataProvider malformedCose
     * @param callable(string, ReceiptFactory): string $break
     */
    public function test_a_cose_sign1_not_in_plasms_one_encoding_fails_as_malformed(callable $break): void
    {
        $this->expectVerificationFailure('malformed');

        Receipt::verify($break($this->factory->cose(), $this->factory));
    }

    public function test_the_summary_names_the_job_executor_outcome_and_files(): void
    {
        $summary = Receipt::verify($this->factory->cose(['outcome' => 'exit', 'exit_code' => 3]))->summary();

        self::assertStringContainsString('verified', $summary);
        self::assertStringContainsString($this->factory->peerId(), $summary);
        self::assertStringContainsString('exit (exit code 3)', $summary);
        self::assertStringContainsString('/output/sub/b.bin: 2 bytes', $summary);
        self::assertStringContainsString('profile wasi-p1-det/1', $summary);
    }

    private function expectVerificationFailure(string $reason): void
    {
        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage("receipt rejected ($reason)");
    }
}
