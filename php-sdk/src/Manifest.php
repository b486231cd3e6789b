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
    /** Where a deterministic job's wall clock starts unless it says otherwise (unix ms). */
    public const DEFAULT_EPOCH_MS = 1_700_000_000_000;

    private ?string $module = null;
    private string $moduleSha256;
    private ?string $moduleName = null;
    private string $stdin = '';
    /** @var list<string> */
    private array $args = [];
    /** @var array<string, string> */
    private array $env = [];
    /** @var array<string, string> guest path => bytes, sorted by path */
    private array $files = [];
    /** @var array<string, int> */
    private array $limits = [];
    /** @var array<string, mixed>|null */
    private ?array $placement = null;
    private bool $deterministic = true;
    private ?string $seed = null;
    private ?int $epochMs = null;
    private string $reuse = 'off';

    /** The reuse modes (docs/architecture.md, "Verified reuse"). */
    public const REUSE_MODES = ['off', 'local', 'network'];

    private function __construct()
    {
    }

    /** Send the module bytes with the job (Client::submit() uploads a big one first). */
    public static function fromBytes(string $wasm): self
    {
        if ($wasm === '') {
            throw new \Plasm\Exception\InvalidArgumentException('the module is empty; pass the bytes of a .wasm file');
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
            throw new \Plasm\Exception\InvalidArgumentException(sprintf('cannot read the module file %s', $path));
        }
        return self::fromBytes($wasm)->withModuleName(basename($path));
    }

    /** Refer to a module the node already holds (see Client::uploadModule()). */
    public static function fromSha256(string $sha256): self
    {
        if (preg_match('/\A[0-9a-f]{64}\z/', $sha256) !== 1) {
            throw new \Plasm\Exception\InvalidArgumentException('a module sha256 is 64 lowercase hex characters');
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
                throw new \Plasm\Exception\InvalidArgumentException(sprintf('environment variable "%s" needs a non-empty name without "=" and a string value', $name));
            }
            $m->env[$name] = $value;
        }
        return $m;
    }

    /**
     * A file the guest can read (not write) at $guestPath, e.g. /input/data.txt, with the
     * bytes of $hostPath read now. Sent in the manifest's `files` and covered by the input
     * hash the receipt signs (inputSha256()).
     */
    public function withInputFile(string $guestPath, string $hostPath): self
    {
        $bytes = is_file($hostPath) ? @file_get_contents($hostPath) : false;
        if ($bytes === false) {
            throw new \Plasm\Exception\InvalidArgumentException(sprintf('cannot read the input file %s', $hostPath));
        }
        return $this->withInputBytes($guestPath, $bytes);
    }

    /**
     * The determinism profile (on by default): virtual clocks from $epochMs and a random stream
     * seeded by $seed (raw bytes; default the input's own hash), so every node gives the same
     * result. withoutDeterminism() asks for the host's clocks and randomness instead.
     */
    public function withDeterminism(?string $seed = null, ?int $epochMs = null): self
    {
        if ($seed !== null && (strlen($seed) < 1 || strlen($seed) > 64)) {
            throw new \Plasm\Exception\InvalidArgumentException('a seed is 1 to 64 bytes');
        }
        if ($epochMs !== null && ($epochMs < 0 || $epochMs > 253402300799999)) {
            throw new \Plasm\Exception\InvalidArgumentException('epoch_ms is unix ms from 0 to the year 9999');
        }
        $m = clone $this;
        $m->deterministic = true;
        $m->seed = $seed;
        $m->epochMs = $epochMs;
        return $m;
    }

    /**
     * Verified reuse: 'off' (the default) always runs the job; 'local' lets the node answer
     * at once with its earlier verified run of the same job (module, input and files,
     * limits, profile), marked reused (Result::reused()), without running it; 'network'
     * also takes a signed memo record from the DHT, and publishes one once the job ran.
     * Needs determinism on (the node refuses it otherwise).
     */
    public function withReuse(string $mode): self
    {
        if (!in_array($mode, self::REUSE_MODES, true)) {
            throw new \Plasm\Exception\InvalidArgumentException(sprintf("reuse is one of %s, not '%s'", implode(', ', self::REUSE_MODES), $mode));
        }
        $m = clone $this;
        $m->reuse = $mode;
        return $m;
    }

    public function withoutDeterminism(): self
    {
        $m = clone $this;
        $m->deterministic = false;
        $m->seed = null;
        $m->epochMs = null;
        return $m;
    }

    /** Like withInputFile(), with the file's bytes given. */
    public function withInputBytes(string $guestPath, string $bytes): self
    {
        self::checkInputPath($guestPath);
        foreach (array_keys($this->files) as $path) {
            $path = (string) $path;
            if ($path === $guestPath) {
                throw new \Plasm\Exception\InvalidArgumentException(sprintf('input file %s is given twice', $guestPath));
            }
            if (str_starts_with($guestPath, $path . '/') || str_starts_with($path, $guestPath . '/')) {
                throw new \Plasm\Exception\InvalidArgumentException(sprintf('input file %s cannot be both a file and the directory of another (%s)', min($path, $guestPath), max($path, $guestPath)));
            }
        }
        $m = clone $this;
        $m->files[$guestPath] = $bytes;
        uksort($m->files, static fn (string|int $a, string|int $b): int => strcmp((string) $a, (string) $b));
        return $m;
    }

    /**
     * Limits left null keep the node's defaults. The output limits bound the files the job
     * may leave under /output (all of them, one, how many); maxInputFilesBytes the input files.
     */
    public function withLimits(
        ?int $fuel = null,
        ?int $memoryBytes = null,
        ?int $timeoutMs = null,
        ?int $maxOutputBytes = null,
        ?int $maxOutputFilesBytes = null,
        ?int $maxOutputFileBytes = null,
        ?int $maxOutputFiles = null,
        ?int $maxInputFilesBytes = null,
    ): self {
        $m = clone $this;
        $given = [
            'fuel' => $fuel, 'memory_bytes' => $memoryBytes, 'timeout_ms' => $timeoutMs, 'max_output_bytes' => $maxOutputBytes,
            'max_output_files_bytes' => $maxOutputFilesBytes, 'max_output_file_bytes' => $maxOutputFileBytes,
            'max_output_files' => $maxOutputFiles, 'max_input_files_bytes' => $maxInputFilesBytes,
        ];
        foreach ($given as $key => $value) {
            if ($value === null) {
                continue;
            }
            if ($value <= 0) {
                throw new \Plasm\Exception\InvalidArgumentException(sprintf('limit %s must be a positive integer, got %d', $key, $value));
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
            throw new \Plasm\Exception\InvalidArgumentException('runOnPeer() needs a peer id such as 12D3KooW...');
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

    /**
     * A quorum job: run on $replicas distinct other peers; it is done when $quorum of their
     * receipts agree on every deterministic field (default a majority), adding replicas up to
     * $maxReplicas (default 2 * $replicas, at most 16) while they disagree, else the job ends
     * `disputed`. Result::quorum() then says who agreed; verifyReceipt() checks it. With
     * $includeSelf the node runs one of the replicas itself (first), the others on peers.
     *
     * @param array<string, mixed> $requirements capability requirements each peer must meet
     */
    public function runWithQuorum(int $replicas, ?int $quorum = null, ?int $maxReplicas = null, array $requirements = [], bool $includeSelf = false): self
    {
        $quorum ??= intdiv($replicas, 2) + 1;
        $maxReplicas ??= min(2 * $replicas, max(16, $replicas));
        if ($replicas < 1 || $quorum < 1 || $quorum > $replicas || $maxReplicas < $replicas || $maxReplicas > 16) {
            throw new \Plasm\Exception\InvalidArgumentException(sprintf('a quorum job needs 1 <= quorum <= replicas <= max_replicas <= 16, got quorum %d, replicas %d, max_replicas %d', $quorum, $replicas, $maxReplicas));
        }
        $placement = ['mode' => 'any', 'replicas' => $replicas, 'quorum' => $quorum, 'max_replicas' => $maxReplicas];
        if ($requirements !== []) {
            $placement['requirements'] = $requirements;
        }
        if ($includeSelf) {
            $placement['include_self'] = true;
        }
        return $this->withPlacement($placement);
    }

    /** The peer ID of runOnPeer(), which alone may run the job (and sign its receipt); else null. */
    public function targetPeer(): ?string
    {
        return ($this->placement['mode'] ?? null) === 'peer' ? $this->placement['peer_id'] : null;
    }

    public function moduleSha256(): string
    {
        return $this->moduleSha256;
    }

    /**
     * Hex sha256 of the job input as receipts (version 2) hash it: the canonical CBOR of
     * {"args": [...], "env": {...}, "files": [{"path", "sha256", "size"}...], "module_name",
     * "stdin": {"sha256", "size"}}, files sorted by path, hashes as raw bytes
     * (protocol/receipt.py input_sha256). A receipt with another input hash is for a job that
     * did not get this manifest's stdin, args, env, module name or input files.
     */
    public function inputSha256(): string
    {
        $files = [];
        foreach ($this->files as $path => $bytes) {
            $files[] = new Map(['path' => (string) $path, ...self::digest($bytes)]);
        }
        return hash('sha256', Encoder::encode(new Map([
            'args' => $this->args,
            'env' => new Map($this->env),
            'files' => $files,
            // argv[0]: the daemon's default when the manifest names none.
            'module_name' => $this->moduleName ?? 'module.wasm',
            'stdin' => new Map(self::digest($this->stdin)),
            'determinism' => $this->deterministic ? new Map([
                'epoch_ms' => $this->epochMs ?? self::DEFAULT_EPOCH_MS,
                'seed' => $this->seed === null ? null : new ByteString($this->seed),
            ]) : null,
        ])));
    }

    /** @return array<string, string> the input files, guest path => bytes, sorted by path */
    public function inputFiles(): array
    {
        return $this->files;
    }

    public function moduleBytes(): ?string
    {
        return $this->module;
    }

    public function stdin(): string
    {
        return $this->stdin;
    }

    /**
     * The manifest JSON object, without the fields left unset. Everything rides inline unless
     * a size is given: a module above $inlineModuleBytes is named by `module_sha256` and each
     * input file above $inlineFileBytes by `{"path", "sha256"}`, for a node that already
     * holds those bytes (Client::submit() uploads them first). The input hash is the same
     * either way.
     *
     * @return array<string, mixed>
     */
    public function toArray(?int $inlineModuleBytes = null, ?int $inlineFileBytes = null): array
    {
        $out = $this->module !== null && ($inlineModuleBytes === null || strlen($this->module) <= $inlineModuleBytes)
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
        if ($this->files !== []) {
            $out['files'] = [];
            foreach ($this->files as $path => $bytes) {
                $out['files'][] = $inlineFileBytes === null || strlen($bytes) <= $inlineFileBytes
                    ? ['path' => (string) $path, 'content' => base64_encode($bytes)]
                    : ['path' => (string) $path, 'sha256' => hash('sha256', $bytes)];
            }
        }
        if ($this->limits !== []) {
            $out['limits'] = $this->limits;
        }
        if ($this->placement !== null) {
            $out['placement'] = $this->placement;
        }
        if (!$this->deterministic) {
            $out['determinism'] = 'off';
        }
        if ($this->seed !== null) {
            $out['seed'] = bin2hex($this->seed);
        }
        if ($this->epochMs !== null) {
            $out['epoch_ms'] = $this->epochMs;
        }
        if ($this->reuse !== 'off') {
            $out['reuse'] = $this->reuse;
        }
        return $out;
    }

    /** toArray() as the JSON text of a `POST /v1/jobs` body. */
    public function toJson(?int $inlineModuleBytes = null, ?int $inlineFileBytes = null): string
    {
        $array = $this->toArray($inlineModuleBytes, $inlineFileBytes);
        if (isset($array['env'])) {
            $array['env'] = (object) $array['env'];
        }
        if (isset($array['placement']['requirements'])) {
            $array['placement']['requirements'] = (object) $array['placement']['requirements'];
        }
        return json_encode($array, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
    }

    /** @return array{sha256: ByteString, size: int} */
    private static function digest(string $bytes): array
    {
        return ['sha256' => new ByteString(hash('sha256', $bytes, true)), 'size' => strlen($bytes)];
    }

    /** An absolute, normalised UTF-8 path without NUL, not /output or under it (runtime/job.py). */
    private static function checkInputPath(string $path): void
    {
        $why = match (true) {
            preg_match('//u', $path) !== 1 => 'is not valid UTF-8',
            str_contains($path, "\0") => 'must not contain a NUL character',
            !str_starts_with($path, '/') || $path === '/' => 'must be an absolute file path such as /input/data.txt',
            strlen($path) > 4096 => 'is longer than 4096 bytes',
            array_intersect(explode('/', substr($path, 1)), ['', '.', '..']) !== [] => "must be normalised: no empty, '.' or '..' component, no trailing '/'",
            max(array_map('strlen', explode('/', substr($path, 1)))) > 255 => 'has a component longer than 255 bytes',
            $path === '/output' || str_starts_with($path, '/output/') => "is under /output, which holds the job's outputs only",
            default => null,
        };
        if ($why !== null) {
            throw new \Plasm\Exception\InvalidArgumentException(sprintf('input file path %s %s', json_encode($path, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), $why));
        }
    }

    /** @param array<string, mixed> $placement */
    private function withPlacement(array $placement): self
    {
        $m = clone $this;
        $m->placement = $placement;
        return $m;
    }
}
