<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Cbor\ByteString;
use Plasm\Exception\VerificationException;
use Plasm\Receipt;
use Plasm\Cbor\Encoder;
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
        $receipt = Receipt::verify($this->factory->envelope());

        self::assertSame('0190a1b2c3d4e5f60718293a4b5c6d7e', $receipt->jobId);
        self::assertSame($this->factory->moduleSha256(), $receipt->moduleSha256);
        self::assertSame($this->factory->peerId(), $receipt->executor);
        self::assertSame('ok', $receipt->outcome);
        self::assertSame(1234, $receipt->fuelConsumed);
        self::assertSame(['fuel' => 1_000_000_000, 'memory_bytes' => 64 << 20, 'timeout_ms' => 10_000, 'max_output_bytes' => 1 << 20, 'max_output_files_bytes' => 16 << 20, 'max_output_file_bytes' => 16 << 20, 'max_output_files' => 64, 'max_input_files_bytes' => 16 << 20], $receipt->limits);
        self::assertSame(ReceiptFactory::NONCE, $receipt->nonce);
    }

    public function test_a_receipt_verifies_against_the_module_and_output_the_client_holds(): void
    {
        $receipt = Receipt::verify(
            $this->factory->envelope(),
            moduleSha256: $this->factory->moduleSha256(),
            stdout: ReceiptFactory::STDOUT,
            stderr: ReceiptFactory::STDERR,
            executor: $this->factory->peerId(),
            jobId: '0190a1b2c3d4e5f60718293a4b5c6d7e',
            nonce: ReceiptFactory::NONCE,
        );

        self::assertSame(strlen(ReceiptFactory::STDOUT), $receipt->stdoutLen);
    }

    public function test_changing_any_byte_of_the_envelope_makes_verification_fail(): void
    {
        $envelope = $this->factory->envelope();
        $accepted = [];
        for ($i = 0, $n = strlen($envelope); $i < $n; $i++) {
            foreach ([0x01, 0x80] as $bit) {
                $tampered = $envelope;
                $tampered[$i] = chr(ord($tampered[$i]) ^ $bit);
                try {
                    Receipt::verify($tampered);
                    $accepted[] = sprintf('byte %d ^ 0x%02x', $i, $bit);
                } catch (VerificationException) {
                    // expected
                }
            }
        }

        self::assertSame([], $accepted, 'tampered envelopes were accepted');
    }

    public function test_a_signature_by_another_key_fails_as_bad_signature(): void
    {
        $other = new ReceiptFactory('another-seed-of-thirty-two-bytes');
        $body = Encoder::encode($this->factory->body());
        $signature = sodium_crypto_sign_detached(Receipt::SIGNING_CONTEXT . $body, $other->secretKey);

        $this->expectVerificationFailure('bad_signature');

        Receipt::verify($this->factory->seal($body, $signature));
    }

    public function test_a_signature_without_the_domain_prefix_fails(): void
    {
        $body = Encoder::encode($this->factory->body());
        $signature = sodium_crypto_sign_detached($body, $this->factory->secretKey);

        $this->expectVerificationFailure('bad_signature');

        Receipt::verify($this->factory->seal($body, $signature));
    }

    public function test_a_receipt_signed_by_a_key_that_is_not_the_executor_fails_as_key_mismatch(): void
    {
        $impostor = new ReceiptFactory('impostor-seed-of-thirty-two-byte');
        $body = Encoder::encode($this->factory->body()); // names the honest peer as executor

        $this->expectVerificationFailure('key_mismatch');

        Receipt::verify($impostor->seal($body));
    }

    public function test_a_module_the_client_did_not_send_fails_as_hash_mismatch(): void
    {
        $this->expectVerificationFailure('hash_mismatch');

        Receipt::verify($this->factory->envelope(), moduleSha256: hash('sha256', 'another module'));
    }

    public function test_stdout_that_differs_from_the_signed_hash_fails_as_hash_mismatch(): void
    {
        $this->expectVerificationFailure('hash_mismatch');

        Receipt::verify($this->factory->envelope(), stdout: "dlroW ,olleh\n");
    }

    public function test_stderr_that_differs_from_the_signed_hash_fails_as_hash_mismatch(): void
    {
        $this->expectVerificationFailure('hash_mismatch');

        Receipt::verify($this->factory->envelope(), stderr: 'warning');
    }

    public function test_an_unexpected_executor_fails(): void
    {
        $this->expectVerificationFailure('executor_mismatch');

        Receipt::verify($this->factory->envelope(), executor: (new ReceiptFactory('another-seed-of-thirty-two-bytes'))->peerId());
    }

    public function test_an_unexpected_job_id_fails(): void
    {
        $this->expectVerificationFailure('job_id_mismatch');

        Receipt::verify($this->factory->envelope(), jobId: str_repeat('0', 32));
    }

    public function test_an_unexpected_nonce_fails(): void
    {
        $this->expectVerificationFailure('nonce_mismatch');

        Receipt::verify($this->factory->envelope(), nonce: str_repeat("\0", 16));
    }

    /** @return array<string, array{array<string, mixed>}> body changes, each signed correctly */
    public static function malformedBodies(): array
    {
        return [
            'missing field' => [['fuel_consumed' => new Omit()]],
            'unknown extra field' => [['extra' => 1]],
            'zero fuel limit' => [['limits' => ['fuel' => 0, 'memory_bytes' => 1, 'timeout_ms' => 1, 'max_output_bytes' => 1, 'max_output_files_bytes' => 1, 'max_output_file_bytes' => 1, 'max_output_files' => 1, 'max_input_files_bytes' => 1]]],
            'executor missing' => [['executor' => new Omit()]],
            'text where bytes belong' => [['module_sha256' => str_repeat('a', 32)]],
            'short hash' => [['stdout_sha256' => new ByteString(str_repeat("\0", 31))]],
            'short nonce' => [['nonce' => new ByteString('short')]],
            'negative length' => [['stdout_len' => -1]],
            'bool as int' => [['stdout_truncated' => 0]],
            'unknown outcome' => [['outcome' => 'exploded']],
            'job id not hex' => [['job_id' => 'not-a-job-id-not-a-job-id-123456']],
            'limits missing fuel' => [['limits' => ['memory_bytes' => 1, 'timeout_ms' => 1, 'max_output_bytes' => 1, 'max_output_files_bytes' => 1, 'max_output_file_bytes' => 1, 'max_output_files' => 1, 'max_input_files_bytes' => 1]]],
            'engine version not text' => [['engine' => ['name' => 'wasmtime', 'version' => 50]]],
            'exit code as text' => [['exit_code' => '3']],
        ];
    }

    /**
     * @dataProvider malformedBodies
     * @param array<string, mixed> $overrides
     */
    public function test_a_correctly_signed_body_of_the_wrong_shape_fails_as_malformed(array $overrides): void
    {
        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->envelope($overrides));
    }

    public function test_a_correctly_signed_body_of_another_version_fails_as_unsupported_version(): void
    {
        $this->expectVerificationFailure('unsupported_version');

        Receipt::verify($this->factory->envelope(['v' => 2]));
    }

    public function test_a_correctly_signed_body_with_trailing_bytes_fails_as_malformed(): void
    {
        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->seal(Encoder::encode($this->factory->body()) . "\x00"));
    }

    public function test_a_correctly_signed_body_with_a_duplicate_key_fails_as_malformed(): void
    {
        $body = Encoder::encode($this->factory->body());
        // Rewrite the map header to one more entry and append "v": 1 again.
        $duplicated = Encoder::head(5, 23) . substr($body, 2) . Encoder::encode('v') . Encoder::encode(1);

        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->seal($duplicated));
    }

    public function test_an_envelope_with_trailing_bytes_fails_as_malformed(): void
    {
        $this->expectVerificationFailure('malformed');

        Receipt::verify($this->factory->envelope() . "\xf6");
    }

    public function test_an_envelope_with_an_extra_field_fails_as_malformed(): void
    {
        $body = Encoder::encode($this->factory->body());
        $envelope = Encoder::encode([
            'v' => 1,
            'body' => new ByteString($body),
            'sig' => new ByteString(sodium_crypto_sign_detached(Receipt::SIGNING_CONTEXT . $body, $this->factory->secretKey)),
            'key' => new ByteString($this->factory->publicKey),
            'note' => 'hi',
        ]);

        $this->expectVerificationFailure('malformed');

        Receipt::verify($envelope);
    }

    public function test_an_envelope_using_an_indefinite_length_body_fails_as_malformed(): void
    {
        $body = Encoder::encode($this->factory->body());
        $signature = sodium_crypto_sign_detached(Receipt::SIGNING_CONTEXT . $body, $this->factory->secretKey);
        // The envelope map written by hand: "body" as an indefinite-length byte string.
        $envelope = Encoder::head(5, 4)
            . Encoder::encode('v') . Encoder::encode(1)
            . Encoder::encode('key') . Encoder::encode(new ByteString($this->factory->publicKey))
            . Encoder::encode('sig') . Encoder::encode(new ByteString($signature))
            . Encoder::encode('body') . "\x5f" . Encoder::encode(new ByteString($body)) . "\xff";

        $this->expectVerificationFailure('malformed');

        Receipt::verify($envelope);
    }

    public function test_a_cbor_array_instead_of_an_envelope_fails_as_malformed(): void
    {
        $this->expectVerificationFailure('malformed');

        Receipt::verify(Encoder::encode([1, 2, 3]));
    }

    public function test_the_summary_names_the_job_executor_and_outcome(): void
    {
        $summary = Receipt::verify($this->factory->envelope(['outcome' => 'exit', 'exit_code' => 3]))->summary();

        self::assertStringContainsString('verified', $summary);
        self::assertStringContainsString($this->factory->peerId(), $summary);
        self::assertStringContainsString('exit (exit code 3)', $summary);
    }

    private function expectVerificationFailure(string $reason): void
    {
        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage("receipt rejected ($reason)");
    }
}
