<?php

declare(strict_types=1);

namespace Plasm;

use Plasm\Cbor\ByteString;
use Plasm\Cbor\Encoder;
use Plasm\Cbor\Map;

/**
 * What to run and where: an immutable builder for the `POST /v1/jobs` body
 * (schemas/manifest.schema.json). Every with*() and run*() returns a new Manifest.
 *
 *     $manifest = Manifest::fromFile('hello.wasm')
 *         ->withStdin("Hello, World")
 *         ->withLimits(fuel: 10_000_000, timeoutMs: 2_000)
 *         ->runOnAnyPeer(excludeSelf: true);
 *
 * The manifest keeps the module's sha256 even when it only sends the hash, so a receipt can
 * always be checked against the module the client meant to run.
 */
final class Manifest
{
    private ?string $module = null;
    private string $moduleSha256;
    private ?string $moduleName = null;
    private string $stdin = '';
    /** @var list<string> */
    private array $args = [];
    /** @var array<string, string> */
    private array $env = [];
    /** @var array<string, int> */
    private array $limits = [];
    /** @var array<string, mixed>|null */
    private ?array $placement = null;

    private function __construct()
    {
    }

    /** Send the module bytes with the job. */
    public static function fromBytes(string $wasm): self
    {
        if ($wasm === '') {
            throw new \InvalidArgumentException('the module is empty; pass the bytes of a .wasm file');
        }
        $m = new self();
        $m->module = $wasm;
        $m->moduleSha256 = hash('sha256', $wasm);
        return $m;
    }

    public static function fromFile(string $path): self
    {
        $wasm = @file_get_contents($path);
        if ($wasm === false) {
            throw new \InvalidArgumentException(sprintf('cannot read the module file %s', $path));
        }
        return self::fromBytes($wasm)->withModuleName(basename($path));
    }

    /** Refer to a module the node already holds (see Client::uploadModule()). */
    public static function fromSha256(string $sha256): self
    {
        if (preg_match('/\A[0-9a-f]{64}\z/', $sha256) !== 1) {
            throw new \InvalidArgumentException('a module sha256 is 64 lowercase hex characters');
        }
        $m = new self();
        $m->moduleSha256 = $sha256;
        return $m;
    }

    /** The name the guest sees as argv[0]. */
    public function withModuleName(string $name): self
    {
        $m = clone $this;
        $m->moduleName = $name;
        return $m;
    }

    public function withStdin(string $stdin): self
    {
        $m = clone $this;
        $m->stdin = $stdin;
        return $m;
    }

    public function withArgs(string ...$args): self
    {
        $m = clone $this;
        $m->args = array_values($args);
        return $m;
    }

    /** @param array<string, string> $env */
    public function withEnv(array $env): self
    {
        $m = clone $this;
        $m->env = [];
        foreach ($env as $name => $value) {
            $name = (string) $name;
            if ($name === '' || str_contains($name, '=') || !is_string($value)) {
                throw new \InvalidArgumentException(sprintf('environment variable "%s" needs a non-empty name without "=" and a string value', $name));
            }
            $m->env[$name] = $value;
        }
        return $m;
    }

    /** Limits left null keep the node's defaults. */
    public function withLimits(?int $fuel = null, ?int $memoryBytes = null, ?int $timeoutMs = null, ?int $maxOutputBytes = null): self
    {
        $m = clone $this;
        foreach (['fuel' => $fuel, 'memory_bytes' => $memoryBytes, 'timeout_ms' => $timeoutMs, 'max_output_bytes' => $maxOutputBytes] as $key => $value) {
            if ($value === null) {
                continue;
            }
            if ($value <= 0) {
                throw new \InvalidArgumentException(sprintf('limit %s must be a positive integer, got %d', $key, $value));
            }
            $m->limits[$key] = $value;
        }
        return $m;
    }

    public function runLocally(): self
    {
        return $this->withPlacement(['mode' => 'local']);
    }

    public function runOnPeer(string $peerId): self
    {
        if ($peerId === '') {
            throw new \InvalidArgumentException('runOnPeer() needs a peer id such as 12D3KooW...');
        }
        return $this->withPlacement(['mode' => 'peer', 'peer_id' => $peerId]);
    }

    /** @param array<string, mixed> $requirements capability requirements the peer must meet */
    public function runOnAnyPeer(array $requirements = [], bool $excludeSelf = false): self
    {
        $placement = ['mode' => 'any'];
        if ($requirements !== []) {
            $placement['requirements'] = $requirements;
        }
        if ($excludeSelf) {
            $placement['exclude_self'] = true;
        }
        return $this->withPlacement($placement);
    }

    public function moduleSha256(): string
    {
        return $this->moduleSha256;
    }

    /**
     * Hex sha256 of the job input as receipts hash it: canonical CBOR
     * {"args": [...], "env": {...}, "stdin": bytes}. A receipt with another input hash is
     * for a job that did not get this manifest's stdin, args or env.
     */
    public function inputSha256(): string
    {
        return hash('sha256', Encoder::encode(new Map([
            'args' => $this->args,
            'env' => new Map($this->env),
            // argv[0]: the daemon's default when the manifest names none.
            'module_name' => $this->moduleName ?? 'module.wasm',
            'stdin' => new ByteString($this->stdin),
        ])));
    }

    public function moduleBytes(): ?string
    {
        return $this->module;
    }

    public function stdin(): string
    {
        return $this->stdin;
    }

    /** @return array<string, mixed> the manifest JSON object, without the fields left unset */
    public function toArray(): array
    {
        $out = $this->module !== null
            ? ['module' => base64_encode($this->module)]
            : ['module_sha256' => $this->moduleSha256];
        if ($this->moduleName !== null) {
            $out['module_name'] = $this->moduleName;
        }
        if ($this->stdin !== '') {
            $out['stdin'] = base64_encode($this->stdin);
        }
        if ($this->args !== []) {
            $out['args'] = $this->args;
        }
        if ($this->env !== []) {
            $out['env'] = $this->env;
        }
        if ($this->limits !== []) {
            $out['limits'] = $this->limits;
        }
        if ($this->placement !== null) {
            $out['placement'] = $this->placement;
        }
        return $out;
    }

    public function toJson(): string
    {
        $array = $this->toArray();
        if (isset($array['env'])) {
            $array['env'] = (object) $array['env'];
        }
        if (isset($array['placement']['requirements'])) {
            $array['placement']['requirements'] = (object) $array['placement']['requirements'];
        }
        return json_encode($array, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
    }

    /** @param array<string, mixed> $placement */
    private function withPlacement(array $placement): self
    {
        $m = clone $this;
        $m->placement = $placement;
        return $m;
    }
}
