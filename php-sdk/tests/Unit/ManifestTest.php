<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Manifest;
use PHPUnit\Framework\TestCase;

/** @small */
final class ManifestTest extends TestCase
{
    private const WASM = "\0asm\x01\0\0\0";

    public function test_a_missing_module_file_is_a_plasm_exception_naming_the_file(): void
    {
        $this->expectException(\Plasm\Exception\PlasmException::class);
        $this->expectExceptionMessage('cannot read the module file /nonexistent/x.wasm');

        Manifest::fromFile('/nonexistent/x.wasm');
    }

    public function test_a_module_alone_gives_a_minimal_manifest(): void
    {
        self::assertSame(['module' => base64_encode(self::WASM)], Manifest::fromBytes(self::WASM)->toArray());
    }

    public function test_every_field_lands_under_its_manifest_name(): void
    {
        $manifest = Manifest::fromBytes(self::WASM)
            ->withModuleName('hello.wasm')
            ->withStdin("Hello, World")
            ->withArgs('-v', 'x')
            ->withEnv(['LANG' => 'C', 'A' => '1'])
            ->withLimits(fuel: 1000, memoryBytes: 65536, timeoutMs: 500, maxOutputBytes: 64)
            ->runOnPeer('12D3KooWExample');

        self::assertSame([
            'module' => base64_encode(self::WASM),
            'module_name' => 'hello.wasm',
            'stdin' => base64_encode('Hello, World'),
            'args' => ['-v', 'x'],
            'env' => ['LANG' => 'C', 'A' => '1'],
            'limits' => ['fuel' => 1000, 'memory_bytes' => 65536, 'timeout_ms' => 500, 'max_output_bytes' => 64],
            'placement' => ['mode' => 'peer', 'peer_id' => '12D3KooWExample'],
        ], $manifest->toArray());
    }

    public function test_reuse_is_sent_only_when_asked_for_and_checked(): void
    {
        $manifest = Manifest::fromBytes(self::WASM);
        self::assertArrayNotHasKey('reuse', $manifest->toArray());
        self::assertSame('network', $manifest->withReuse('network')->toArray()['reuse']);
        self::assertArrayNotHasKey('reuse', $manifest->withReuse('local')->withReuse('off')->toArray());
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);
        $manifest->withReuse('always');
    }

    public function test_a_module_by_hash_sends_the_hash_and_not_the_bytes(): void
    {
        $sha = hash('sha256', self::WASM);

        self::assertSame(['module_sha256' => $sha], Manifest::fromSha256($sha)->toArray());
        self::assertSame($sha, Manifest::fromBytes(self::WASM)->moduleSha256());
    }

    public function test_a_malformed_module_hash_is_refused(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);

        Manifest::fromSha256(strtoupper(hash('sha256', self::WASM)));
    }

    public function test_env_encodes_as_a_json_object_even_with_numeric_names(): void
    {
        $json = Manifest::fromBytes(self::WASM)->withEnv(['1' => 'one'])->toJson();

        self::assertStringContainsString('"env":{"1":"one"}', $json);
    }

    public function test_any_peer_placement_carries_requirements_as_an_object(): void
    {
        $json = Manifest::fromBytes(self::WASM)->runOnAnyPeer(['arch' => 'x86_64'], excludeSelf: true)->toJson();

        self::assertStringContainsString('"placement":{"mode":"any","requirements":{"arch":"x86_64"},"exclude_self":true}', $json);
    }

    public function test_a_quorum_placement_names_replicas_quorum_and_max_replicas(): void
    {
        $json = Manifest::fromBytes(self::WASM)->runWithQuorum(3)->toJson();

        self::assertStringContainsString('"placement":{"mode":"any","replicas":3,"quorum":2,"max_replicas":6}', $json);
    }

    public function test_include_self_asks_the_node_to_run_one_of_the_replicas(): void
    {
        $json = Manifest::fromBytes(self::WASM)->runWithQuorum(2, 2, includeSelf: true)->toJson();

        self::assertStringContainsString('"placement":{"mode":"any","replicas":2,"quorum":2,"max_replicas":4,"include_self":true}', $json);
    }

    public function test_an_impossible_quorum_is_refused_before_it_is_sent(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);
        $this->expectExceptionMessage('1 <= quorum <= replicas');

        Manifest::fromBytes(self::WASM)->runWithQuorum(2, 3);
    }

    public function test_builders_return_new_manifests_and_leave_the_original_alone(): void
    {
        $base = Manifest::fromBytes(self::WASM);

        $base->withStdin('changed')->runLocally();

        self::assertSame(['module' => base64_encode(self::WASM)], $base->toArray());
    }

    public function test_a_non_positive_limit_is_refused(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);
        $this->expectExceptionMessage('fuel');

        Manifest::fromBytes(self::WASM)->withLimits(fuel: 0);
    }

    public function test_an_env_name_with_an_equals_sign_is_refused(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);

        Manifest::fromBytes(self::WASM)->withEnv(['A=B' => 'c']);
    }

    public function test_an_empty_module_is_refused(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);

        Manifest::fromBytes('');
    }

    public function test_a_module_file_gives_its_bytes_and_name(): void
    {
        $path = tempnam(sys_get_temp_dir(), 'plasm-manifest-test-');
        try {
            file_put_contents($path, self::WASM);

            $array = Manifest::fromFile($path)->toArray();
        } finally {
            unlink($path);
        }

        self::assertSame(base64_encode(self::WASM), $array['module']);
        self::assertSame(basename($path), $array['module_name']);
    }

    public function test_input_files_land_in_the_manifest_sorted_by_path_as_base64(): void
    {
        $path = tempnam(sys_get_temp_dir(), 'plasm-manifest-input-');
        try {
            file_put_contents($path, "line one\n");
            $manifest = Manifest::fromBytes(self::WASM)
                ->withInputBytes('/input/z/empty', '')
                ->withInputFile('/input/in.txt', $path);
        } finally {
            unlink($path);
        }

        self::assertSame([
            ['path' => '/input/in.txt', 'content' => base64_encode("line one\n")],
            ['path' => '/input/z/empty', 'content' => ''],
        ], $manifest->toArray()['files']);
        self::assertSame(['/input/in.txt' => "line one\n", '/input/z/empty' => ''], $manifest->inputFiles());
        self::assertStringContainsString('"files":[{"path":"/input/in.txt","content":"bGluZSBvbmUK"}', $manifest->toJson());
    }

    public function test_a_module_and_files_above_the_inline_sizes_are_named_by_sha256(): void
    {
        $manifest = Manifest::fromBytes(self::WASM)->withInputBytes('/input/a', 'abc')->withInputBytes('/input/b', 'ab');

        $array = $manifest->toArray(inlineModuleBytes: strlen(self::WASM) - 1, inlineFileBytes: 2);

        self::assertSame(hash('sha256', self::WASM), $array['module_sha256']);
        self::assertArrayNotHasKey('module', $array);
        self::assertSame([
            ['path' => '/input/a', 'sha256' => hash('sha256', 'abc')],
            ['path' => '/input/b', 'content' => base64_encode('ab')],
        ], $array['files']);
        self::assertSame(base64_encode(self::WASM), $manifest->toArray(inlineModuleBytes: strlen(self::WASM))['module']);
        self::assertSame($array, json_decode($manifest->toJson(strlen(self::WASM) - 1, 2), true));
    }

    public function test_input_files_change_the_input_hash_and_their_order_of_adding_does_not(): void
    {
        $base = Manifest::fromBytes(self::WASM);
        $ab = $base->withInputBytes('/a', '1')->withInputBytes('/b', '2');
        $ba = $base->withInputBytes('/b', '2')->withInputBytes('/a', '1');

        self::assertSame($ab->inputSha256(), $ba->inputSha256());
        self::assertNotSame($base->inputSha256(), $ab->inputSha256());
        self::assertNotSame($ab->inputSha256(), $base->withInputBytes('/a', '1')->withInputBytes('/b', '3')->inputSha256());
        self::assertNotSame($base->inputSha256(), $base->withInputBytes('/a', '')->inputSha256());
    }

    public function test_the_input_hash_is_sha256_of_the_documented_canonical_cbor(): void
    {
        $manifest = Manifest::fromBytes(self::WASM)->withStdin('in')->withArgs('x')->withEnv(['K' => 'V'])->withInputBytes('/f', 'data');
        // {"env": {"K": "V"}, "args": ["x"], "files": [{"path": "/f", "size": 4, "sha256": h}],
        //  "stdin": {"size": 2, "sha256": h}, "determinism": {"seed": null, "epoch_ms": 1.7e12},
        //  "module_name": "module.wasm"}, keys length-first.
        $expected = "\xa6" . "\x63env\xa1\x61K\x61V" . "\x64args\x81\x61x"
            . "\x65files\x81\xa3\x64path\x62/f\x64size\x04\x66sha256\x58\x20" . hash('sha256', 'data', true)
            . "\x65stdin\xa2\x64size\x02\x66sha256\x58\x20" . hash('sha256', 'in', true)
            . "\x6bdeterminism\xa2\x64seed\xf6\x68epoch_ms\x1b" . pack('J', 1_700_000_000_000)
            . "\x6bmodule_name\x6bmodule.wasm";

        self::assertSame(hash('sha256', $expected), $manifest->inputSha256());
    }

    /** @return array<string, array{string}> */
    public static function badInputPaths(): array
    {
        return [
            'relative' => ['input/x'], 'root' => ['/'], 'trailing slash' => ['/input/'], 'dot' => ['/input/./x'],
            'dot dot' => ['/input/../x'], 'empty component' => ['/input//x'], 'under /output' => ['/output/x'],
            '/output itself' => ['/output'], 'NUL' => ["/input/a\0b"], 'not UTF-8' => ["/input/\xff"],
            'long component' => ['/' . str_repeat('a', 256)],
        ];
    }

    /** @dataProvider badInputPaths */
    public function test_an_input_file_path_the_daemon_would_refuse_is_refused(string $path): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);
        $this->expectExceptionMessage('input file path');

        Manifest::fromBytes(self::WASM)->withInputBytes($path, 'x');
    }

    public function test_an_input_file_named_twice_or_as_a_directory_is_refused(): void
    {
        $manifest = Manifest::fromBytes(self::WASM)->withInputBytes('/input/a', 'x');

        foreach (['/input/a', '/input/a/b', '/input'] as $path) {
            try {
                $manifest->withInputBytes($path, 'y');
                self::fail("$path was accepted");
            } catch (\Plasm\Exception\InvalidArgumentException $e) {
                self::assertStringContainsString('/input', $e->getMessage());
            }
        }
    }

    public function test_an_unreadable_input_file_is_refused(): void
    {
        $this->expectException(\Plasm\Exception\InvalidArgumentException::class);
        $this->expectExceptionMessage('cannot read the input file');

        Manifest::fromBytes(self::WASM)->withInputFile('/input/x', sys_get_temp_dir() . '/plasm-no-such-file-' . bin2hex(random_bytes(4)));
    }

    public function test_the_output_and_input_file_limits_are_sent(): void
    {
        $limits = Manifest::fromBytes(self::WASM)
            ->withLimits(maxOutputFilesBytes: 100, maxOutputFileBytes: 50, maxOutputFiles: 3, maxInputFilesBytes: 200)
            ->toArray()['limits'];

        self::assertSame(['max_output_files_bytes' => 100, 'max_output_file_bytes' => 50, 'max_output_files' => 3, 'max_input_files_bytes' => 200], $limits);
    }
}
