<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Exception\PlasmException;
use Plasm\Exception\VerificationException;
use Plasm\Manifest;
use Plasm\Result;
use Plasm\Tests\Support\ReceiptFactory;
use PHPUnit\Framework\TestCase;

/**
 * Verifying a job result trusts only signed bytes: every field the receipt covers is
 * compared with it (the PHP side of tests/protocol/test_saved_verification.py).
 *
 * @small
 */
final class ResultVerificationTest extends TestCase
{
    private ReceiptFactory $factory;

    protected function setUp(): void
    {
        $this->factory = new ReceiptFactory();
    }

    public function test_an_untouched_result_verifies_and_lists_its_outputs(): void
    {
        $result = Result::fromArray($this->factory->jobResult());

        $receipt = $result->verifyReceipt(Manifest::fromBytes(ReceiptFactory::MODULE));

        self::assertSame($result->outputs(), $receipt->outputs);
        self::assertSame(ReceiptFactory::outputsJson(), $result->outputs());
        self::assertFalse($result->outputsTruncated);
    }

    /** @return array<string, array{callable(array<string, mixed>): array<string, mixed>}> one edit of one result field each */
    public static function edits(): array
    {
        $set = static fn (string $key, mixed $value): \Closure => static fn (array $r): array => array_merge($r, [$key => $value]);
        $outcome = static fn (string $key, mixed $value): \Closure => static function (array $r) use ($key, $value): array {
            $r['outcome'][$key] = $value;
            return $r;
        };
        $output = static fn (string $key, mixed $value): \Closure => static function (array $r) use ($key, $value): array {
            $r['outputs'][0][$key] = $value;
            return $r;
        };
        return [
            'job_id' => [$set('job_id', str_repeat('f', 32))],
            'executor' => [static fn (array $r): array => array_merge($r, ['executor' => substr($r['executor'], 0, -1) . 'x'])],
            'module_sha256' => [$set('module_sha256', str_repeat('0', 64))],
            'module_sha256 in capitals' => [static fn (array $r): array => array_merge($r, ['module_sha256' => strtoupper($r['module_sha256'])])],
            'outcome.kind' => [$outcome('kind', 'exit')],
            'outcome.exit_code' => [$outcome('exit_code', 0)],
            'outcome.message' => [$outcome('message', 'all fine')],
            'fuel_consumed' => [static fn (array $r): array => array_merge($r, ['fuel_consumed' => $r['fuel_consumed'] + 1])],
            'fuel_consumed type' => [static fn (array $r): array => array_merge($r, ['fuel_consumed' => (string) $r['fuel_consumed']])],
            'fuel_consumed as a float' => [static fn (array $r): array => array_merge($r, ['fuel_consumed' => (float) $r['fuel_consumed']])],
            'wall_time_us' => [$set('wall_time_us', 1)],
            'stdout_truncated' => [$set('stdout_truncated', true)],
            'stderr_truncated' => [$set('stderr_truncated', true)],
            'outputs_truncated' => [$set('outputs_truncated', true)],
            'outputs_truncated missing' => [static function (array $r): array {
                unset($r['outputs_truncated']);
                return $r;
            }],
            'outputs' => [static function (array $r): array {
                array_pop($r['outputs']);
                return $r;
            }],
            'outputs missing' => [static function (array $r): array {
                unset($r['outputs']);
                return $r;
            }],
            'outputs reordered' => [static fn (array $r): array => array_merge($r, ['outputs' => array_reverse($r['outputs'])])],
            'outputs.sha256' => [$output('sha256', str_repeat('0', 64))],
            'outputs.size' => [$output('size', 99)],
            'outputs.path' => [$output('path', '/output/other.txt')],
            'outputs with an extra key' => [$output('mode', 420)],
            'stdout_text' => [$set('stdout_text', "all is well\n")],
            'stderr_text' => [$set('stderr_text', 'warning')],
            'stdout' => [$set('stdout', base64_encode("forged\n"))],
            'stderr' => [$set('stderr', base64_encode('x'))],
            'stdout sha256' => [static fn (array $r): array => array_merge($r, ['stdout' => base64_encode("forged\n"), 'stdout_text' => "forged\n"])],
            'stderr sha256' => [static fn (array $r): array => array_merge($r, ['stderr' => base64_encode('x'), 'stderr_text' => 'x'])],
        ];
    }

    /**
     * @dataProvider edits
     * @param callable(array<string, mixed>): array<string, mixed> $edit
     */
    public function test_editing_any_covered_field_is_a_result_mismatch_naming_the_field(callable $edit): void
    {
        $case = (string) $this->dataName();
        $field = str_ends_with($case, ' sha256') ? $case : explode(' ', $case)[0];
        $field = str_starts_with($field, 'outputs.') ? 'outputs' : $field; // the list is one field
        $result = Result::fromArray($edit($this->factory->jobResult()));

        try {
            $result->verifyReceipt(Manifest::fromBytes(ReceiptFactory::MODULE));
            self::fail('the edited result verified');
        } catch (VerificationException $e) {
            self::assertSame('result_mismatch', $e->getReason(), $e->getMessage());
            // Bytes edited alone first disagree with their own _text form, as in Python.
            $named = in_array($field, ['stdout', 'stderr'], true) ? "{$field}_text" : $field;
            self::assertStringStartsWith($named, $e->getDetail());
            self::assertMatchesRegularExpression('/\A[a-z0-9_.]+( sha256)?: result says .+, receipt says .+\z/s', $e->getDetail());
        }
    }

    public function test_the_message_says_what_each_side_says(): void
    {
        $json = $this->factory->jobResult([], $this->factory->cose(['outcome' => 'exit', 'exit_code' => 3]));
        $json['outcome'] = ['kind' => 'exit', 'exit_code' => 0, 'message' => null];

        try {
            Result::fromArray($json)->verifyReceipt($this->factory->moduleSha256());
            self::fail('the edited result verified');
        } catch (VerificationException $e) {
            self::assertSame('outcome.exit_code: result says 0, receipt says 3', $e->getDetail());
            self::assertSame('receipt rejected (result_mismatch): outcome.exit_code: result says 0, receipt says 3', $e->getMessage());
        }
    }

    public function test_a_missing_field_is_shown_as_nothing_and_long_values_are_cut(): void
    {
        $json = $this->factory->jobResult(['stdout_text' => str_repeat('é', 300)]);

        try {
            Result::fromArray($json)->verifyReceipt($this->factory->moduleSha256());
            self::fail('the edited result verified');
        } catch (VerificationException $e) {
            self::assertSame('stdout_text: result says "' . str_repeat('é', 196) . '..., receipt says "dlroW ,olleH\n"', $e->getDetail());
        }

        $json = $this->factory->jobResult();
        unset($json['wall_time_us']);
        $this->expectExceptionMessage('wall_time_us: result says nothing, receipt says 410');
        Result::fromArray($json)->verifyReceipt($this->factory->moduleSha256());
    }

    /** @return array<string, array{string}> */
    public static function streams(): array
    {
        return ['stdout' => ['stdout'], 'stderr' => ['stderr']];
    }

    /** @dataProvider streams */
    public function test_a_result_without_its_output_bytes_is_an_error_not_a_pass(string $stream): void
    {
        $json = $this->factory->jobResult();
        unset($json[$stream]);

        $this->expectException(PlasmException::class);
        $this->expectExceptionMessage($stream);

        Result::fromArray($json);
    }

    public function test_a_receipt_for_another_module_than_the_one_sent_is_a_hash_mismatch(): void
    {
        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('receipt rejected (hash_mismatch)');

        Result::fromArray($this->factory->jobResult())->verifyReceipt(Manifest::fromBytes("\0asm\x01\0\0\0\0"));
    }

    public function test_a_receipt_for_another_input_than_the_one_sent_is_a_hash_mismatch(): void
    {
        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('receipt rejected (hash_mismatch)');

        Result::fromArray($this->factory->jobResult())->verifyReceipt(Manifest::fromBytes(ReceiptFactory::MODULE)->withInputBytes('/input/x', 'y'));
    }

    public function test_the_output_files_fetched_verify_against_the_receipt(): void
    {
        $result = Result::fromArray($this->factory->jobResult());

        self::assertCount(2, $result->verifyOutputs(ReceiptFactory::OUTPUTS)->outputs);
        self::assertCount(2, $result->verifyReceipt(Manifest::fromBytes(ReceiptFactory::MODULE), outputs: ReceiptFactory::OUTPUTS)->outputs);
    }

    /** @return array<string, array{array<string, string>}> */
    public static function wrongFiles(): array
    {
        return [
            'one changed' => [['/output/a.txt' => "beta\n"] + ReceiptFactory::OUTPUTS],
            'one missing' => [['/output/a.txt' => "alpha\n"]],
            'one extra' => [ReceiptFactory::OUTPUTS + ['/output/c' => '']],
        ];
    }

    /**
     * @dataProvider wrongFiles
     * @param array<string, string> $files
     */
    public function test_output_files_other_than_the_signed_ones_are_a_hash_mismatch(array $files): void
    {
        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('receipt rejected (hash_mismatch): output file');

        Result::fromArray($this->factory->jobResult())->verifyOutputs($files);
    }

    public function test_a_result_carrying_a_version_1_receipt_is_unsupported_version(): void
    {
        $json = $this->factory->jobResult(['receipt' => ['envelope' => base64_encode('x'), 'body' => [], 'signature' => '', 'public_key' => '']]);

        $this->expectException(VerificationException::class);
        $this->expectExceptionMessage('receipt rejected (unsupported_version)');

        Result::fromArray($json)->verifyReceipt($this->factory->moduleSha256());
    }

    /** @return array<string, array{string, string}> bytes (hex) and Python's decode("utf-8", "replace") of them (hex) */
    public static function invalidUtf8(): array
    {
        return [
            'truncated 3-byte' => ['e282', 'efbfbd'],
            'overlong 4-byte' => ['f08080', 'efbfbdefbfbdefbfbd'],
            'lone ff' => ['61ff62', '61efbfbd62'],
            'surrogate' => ['eda080', 'efbfbdefbfbdefbfbd'],
            'overlong 2-byte' => ['c0af', 'efbfbdefbfbd'],
            'above U+10FFFF' => ['f4908080', 'efbfbdefbfbdefbfbdefbfbd'],
            'valid then truncated' => ['e282ace2', 'e282acefbfbd'],
            'truncated 4-byte' => ['f18080', 'efbfbd'],
            'truncated at the end' => ['6f6bc3', '6f6befbfbd'],
            'valid' => ['c3a9', 'c3a9'],
        ];
    }

    /** @dataProvider invalidUtf8 */
    public function test_text_forms_replace_invalid_utf8_as_python_does(string $bytes, string $text): void
    {
        self::assertSame($text, bin2hex(Result::utf8Replace(hex2bin($bytes))));
    }
}
