<?php

declare(strict_types=1);

namespace Plasm\Tests\Unit;

use Plasm\Manifest;
use PHPUnit\Framework\TestCase;

/** @small */
final class ManifestTest extends TestCase
{
    private const WASM = "\0asm\x01\0\0\0";

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

    public function test_a_module_by_hash_sends_the_hash_and_not_the_bytes(): void
    {
        $sha = hash('sha256', self::WASM);

        self::assertSame(['module_sha256' => $sha], Manifest::fromSha256($sha)->toArray());
        self::assertSame($sha, Manifest::fromBytes(self::WASM)->moduleSha256());
    }

    public function test_a_malformed_module_hash_is_refused(): void
    {
        $this->expectException(\InvalidArgumentException::class);

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

    public function test_builders_return_new_manifests_and_leave_the_original_alone(): void
    {
        $base = Manifest::fromBytes(self::WASM);

        $base->withStdin('changed')->runLocally();

        self::assertSame(['module' => base64_encode(self::WASM)], $base->toArray());
    }

    public function test_a_non_positive_limit_is_refused(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('fuel');

        Manifest::fromBytes(self::WASM)->withLimits(fuel: 0);
    }

    public function test_an_env_name_with_an_equals_sign_is_refused(): void
    {
        $this->expectException(\InvalidArgumentException::class);

        Manifest::fromBytes(self::WASM)->withEnv(['A=B' => 'c']);
    }

    public function test_an_empty_module_is_refused(): void
    {
        $this->expectException(\InvalidArgumentException::class);

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
}
