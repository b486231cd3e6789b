<?php

declare(strict_types=1);

namespace Plasm;

use Plasm\Exception\ApiException;
use Plasm\Exception\JobFailedException;
use Plasm\Exception\PlasmException;
use Plasm\Exception\TimeoutException;
use Plasm\Transport\CurlTransport;
use Plasm\Transport\LocalTransport;
use Plasm\Transport\Request;
use Plasm\Transport\Response;
use Plasm\Transport\TcpTransport;
use Plasm\Transport\Transport;
use Plasm\Transport\UnixSocketTransport;

/**
 * The entry point: talks to a Plasm node's local API through a Transport.
 *
 *     $client = Client::unix();                    // /run/plasmd/plasmd.sock
 *     $job = $client->submit(Manifest::fromFile('hello.wasm')->withStdin('Hello'), wait: 10);
 *     $receipt = $job->result->verifyReceipt($manifest);
 *
 * Errors: TransportException (no answer), TimeoutException (no answer in time),
 * ApiException (the node refused, with its code), JobFailedException (an ApiException: the
 * job ended without a result), VerificationException (a receipt lied).
 * 429 and 503 answers are retried with backoff according to the RetryPolicy.
 */
final class Client
{
    /** The longest `?wait=` the node accepts on POST /v1/jobs. */
    public const MAX_WAIT_SECONDS = 300;
    /**
     * submit() uploads a module above this to POST /v1/modules and names it by sha256: inline,
     * base64 makes it a third bigger, and a request body may hold only the node's
     * api.max_body_bytes (32 MiB by default), while a node takes modules up to 256 MiB.
     */
    public const INLINE_MODULE_BYTES = 8 << 20;
    /** submit() uploads an input file above this to POST /v1/blobs and names it by sha256. */
    public const INLINE_FILE_BYTES = 1 << 20;

    private readonly RetryPolicy $retry;

    public function __construct(private readonly Transport $transport, ?RetryPolicy $retry = null)
    {
        $this->retry = $retry ?? new RetryPolicy();
    }

    public static function unix(string $socketPath = UnixSocketTransport::DEFAULT_SOCKET, float $timeoutSeconds = 30.0, ?RetryPolicy $retry = null): self
    {
        return new self(new UnixSocketTransport($socketPath, $timeoutSeconds), $retry);
    }

    public static function tcp(string $host, int $port, string $token, float $timeoutSeconds = 30.0, ?RetryPolicy $retry = null): self
    {
        return new self(new TcpTransport($host, $port, $token, $timeoutSeconds), $retry);
    }

    /** No daemon: every job runs as one `plasmd execute-job` process. */
    public static function local(string $plasmd = 'plasmd', ?string $stateDir = null, float $timeoutSeconds = 60.0): self
    {
        return new self(new LocalTransport($plasmd, $stateDir, $timeoutSeconds));
    }

    /** Store a module on the node; returns its hex sha256 for Manifest::fromSha256(). */
    public function uploadModule(string $wasm): string
    {
        $data = $this->call(new Request('POST', '/v1/modules', $wasm, 'application/wasm', $this->uploadTimeout(strlen($wasm))));
        $sha256 = $data['sha256'] ?? null;
        if ($sha256 !== hash('sha256', $wasm)) {
            throw new PlasmException(sprintf('the node stored the module under sha256 %s, not the hash of the bytes sent', json_encode($sha256)));
        }
        return $sha256;
    }

    /** Store bytes as a blob on the node (POST /v1/blobs, checked by hash); their hex sha256. */
    public function uploadBlob(string $bytes): string
    {
        $sha256 = hash('sha256', $bytes);
        $data = $this->call(new Request('POST', '/v1/blobs?sha256=' . $sha256, $bytes, 'application/octet-stream', $this->uploadTimeout(strlen($bytes))));
        if (($data['sha256'] ?? null) !== $sha256) {
            throw new PlasmException(sprintf('the node stored the blob under sha256 %s, not the hash of the bytes sent', json_encode($data['sha256'] ?? null)));
        }
        return $sha256;
    }

    /** The bytes of one output file ("/output/...") of a finished job, unverified: see fetchOutputs(). */
    public function output(string $jobId, string $path): string
    {
        if (!str_starts_with($path, '/output/')) {
            throw new \Plasm\Exception\InvalidArgumentException(sprintf('an output path starts with /output/, got %s', $path));
        }
        $relative = implode('/', array_map('rawurlencode', explode('/', substr($path, strlen('/output/')))));
        $response = $this->transport->send(new Request('GET', '/v1/jobs/' . rawurlencode($jobId) . '/outputs/' . $relative));
        if ($response->status !== 200) {
            throw self::apiError($response);
        }
        return $response->body;
    }

    /**
     * Every output file of $result, fetched from the node and verified against the receipt
     * (each file it lists, no other, with its signed size and sha256) before it is returned.
     *
     * @return array<string, string> guest path => bytes
     */
    public function fetchOutputs(Result $result): array
    {
        $files = [];
        foreach ($result->outputs() as $output) {
            $files[$output['path']] = $this->output($result->jobId, $output['path']);
        }
        $result->verifyOutputs($files);
        return $files;
    }

    /**
     * Fetch, verify and save the job's output files under $directory ("/output/a/b.txt" ->
     * "$directory/a/b.txt"); the paths written.
     *
     * @return list<string>
     */
    public function saveOutputs(Result $result, string $directory): array
    {
        $written = [];
        foreach ($this->fetchOutputs($result) as $path => $bytes) {
            $relative = substr($path, strlen('/output/'));
            if (in_array('..', explode('/', $relative), true) || $relative === '') {
                throw new PlasmException(sprintf('refusing to save output %s outside %s', $path, $directory));
            }
            $target = rtrim($directory, '/') . '/' . $relative;
            if (!is_dir(dirname($target)) && !@mkdir(dirname($target), 0o777, true) && !is_dir(dirname($target))) {
                throw new PlasmException(sprintf('cannot make the directory of %s', $target));
            }
            if (@file_put_contents($target, $bytes) !== strlen($bytes)) {
                throw new PlasmException(sprintf('cannot write %s', $target));
            }
            $written[] = $target;
        }
        return $written;
    }

    /**
     * Submit a job. With $waitSeconds the node holds the request until the job finished or
     * the wait ran out; check Job::isFinished(). Without, it answers as soon as it queued the job.
     * A module above INLINE_MODULE_BYTES goes first to POST /v1/modules and each input file
     * above INLINE_FILE_BYTES to POST /v1/blobs; the manifest then names them by sha256.
     */
    public function submit(Manifest $manifest, ?int $waitSeconds = null): Job
    {
        $module = $manifest->moduleBytes();
        if ($module !== null && strlen($module) > self::INLINE_MODULE_BYTES) {
            $this->uploadModule($module);
        }
        foreach ($manifest->inputFiles() as $bytes) {
            if (strlen($bytes) > self::INLINE_FILE_BYTES) {
                $this->uploadBlob($bytes);
            }
        }
        $path = '/v1/jobs' . ($waitSeconds !== null ? '?wait=' . max(0, $waitSeconds) : '');
        $body = $manifest->toJson(self::INLINE_MODULE_BYTES, self::INLINE_FILE_BYTES);
        $data = $this->call(new Request('POST', $path, $body, 'application/json', $this->waitTimeout($waitSeconds)));
        return Job::fromArray($data);
    }

    /**
     * Submit a job and wait for its result, polling when the node answers before the job ends.
     * The receipt is verified against the manifest's module and input (and, for runOnPeer(),
     * that peer as executor), and every field of the returned result against the receipt,
     * before this returns (VerificationException otherwise). A job that ends without
     * a result — e.g. no peer would run it — raises JobFailedException with the node's code
     * and, for remote placement, the peers it tried (getAttempts()).
     */
    public function run(Manifest $manifest, float $timeoutSeconds = 60.0): Result
    {
        $deadline = microtime(true) + $timeoutSeconds;
        // The node holds a request for at most MAX_WAIT_SECONDS; past that, poll.
        $job = $this->submit($manifest, (int) min(self::MAX_WAIT_SECONDS, max(1, floor($timeoutSeconds))));
        if (!$job->isFinished()) {
            $job = $this->waitForJob($job->jobId, max(0.0, $deadline - microtime(true)));
        }
        $result = $this->requireResult($job);
        // A job placed on one peer must come back signed by that peer.
        $result->verifyReceipt($manifest, executor: $manifest->targetPeer());
        return $result;
    }

    /** Poll a job until it finished; TimeoutException when it did not within the time. */
    public function waitForJob(string $jobId, float $timeoutSeconds = 60.0): Job
    {
        $deadline = microtime(true) + $timeoutSeconds;
        $delay = 0.02;
        while (true) {
            $job = $this->getJob($jobId);
            if ($job->isFinished()) {
                return $job;
            }
            $remaining = $deadline - microtime(true);
            if ($remaining <= 0) {
                throw new TimeoutException(sprintf('job %s is still %s after %.1f s; it keeps running on the node (cancel it with cancel())', $jobId, $job->status, $timeoutSeconds));
            }
            usleep((int) (1e6 * min($delay, $remaining)));
            $delay = min($delay * 2, 0.5);
        }
    }

    public function getJob(string $jobId): Job
    {
        return Job::fromArray($this->call(new Request('GET', '/v1/jobs/' . rawurlencode($jobId))));
    }

    /** @return list<array<string, mixed>> job summaries, newest first as the node orders them */
    public function listJobs(?string $status = null, ?int $limit = null): array
    {
        $query = http_build_query(array_filter(['status' => $status, 'limit' => $limit], static fn ($v) => $v !== null));
        $data = $this->call(new Request('GET', '/v1/jobs' . ($query !== '' ? '?' . $query : '')));
        return array_values(is_array($data['jobs'] ?? null) ? $data['jobs'] : []);
    }

    public function cancel(string $jobId): Job
    {
        return Job::fromArray($this->call(new Request('DELETE', '/v1/jobs/' . rawurlencode($jobId))));
    }

    /** @return array<string, mixed> peer_id, public_key (hex), version, capabilities, limits */
    public function nodeInfo(): array
    {
        return $this->call(new Request('GET', '/v1/node'));
    }

    /** @return list<array<string, mixed>> the peers the node knows; empty when it has none */
    public function peers(): array
    {
        try {
            $data = $this->call(new Request('GET', '/v1/peers'));
        } catch (ApiException $e) {
            if ($e->getHttpStatus() === 404) {
                return []; // a node built without the P2P layer has no peers route
            }
            throw $e;
        }
        return array_values(is_array($data['peers'] ?? null) ? $data['peers'] : []);
    }

    public function health(): bool
    {
        return ($this->call(new Request('GET', '/v1/health'))['status'] ?? null) === 'ok';
    }

    /**
     * Ask the node to verify a receipt (its COSE_Sign1 bytes, e.g. Result::receiptCose()).
     * For a check that does not trust the node, use Receipt::verify() instead.
     *
     * @return array{valid: bool, reason: ?string, message: ?string, receipt: mixed}
     */
    public function verify(string $cose): array
    {
        $data = $this->call(new Request('POST', '/v1/receipts/verify', json_encode(['cose' => base64_encode($cose)], JSON_THROW_ON_ERROR)));
        return [
            'valid' => ($data['valid'] ?? false) === true,
            'reason' => $data['reason'] ?? null,
            'message' => is_string($data['message'] ?? null) ? $data['message'] : null,
            'receipt' => $data['receipt'] ?? null,
        ];
    }

    /**
     * Ask the node to verify a saved job result (or a job as getJob() shows it, or a receipt's
     * JSON form): its receipt, and every field of the result against it. For a check that
     * does not trust the node, use Result::verifyReceipt() instead.
     *
     * @param Result|array<string, mixed> $saved
     * @return array{valid: bool, reason: ?string, message: ?string, receipt: mixed}
     */
    public function verifyResult(Result|array $saved): array
    {
        $json = $saved instanceof Result ? $saved->raw : $saved;
        $data = $this->call(new Request('POST', '/v1/receipts/verify', json_encode($json, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION)));
        return [
            'valid' => ($data['valid'] ?? false) === true,
            'reason' => $data['reason'] ?? null,
            'message' => is_string($data['message'] ?? null) ? $data['message'] : null,
            'receipt' => $data['receipt'] ?? null,
        ];
    }

    /** @return array<string, mixed> the decoded JSON body of a 2xx answer */
    private function call(Request $request): array
    {
        $attempt = 1;
        while (true) {
            $response = $this->transport->send($request);
            if ($response->status >= 200 && $response->status < 300) {
                return $response->decodeJson();
            }
            if (!$this->retry->shouldRetry($response->status, $attempt)) {
                throw self::apiError($response);
            }
            usleep((int) (1e6 * $this->retry->delaySeconds($attempt, $response->header('retry-after'))));
            $attempt++;
        }
    }

    private static function apiError(Response $response): ApiException
    {
        $data = json_decode($response->body, true);
        $error = is_array($data) && is_array($data['error'] ?? null) ? $data['error'] : null;
        if ($error !== null && is_string($error['code'] ?? null)) {
            return new ApiException($error['code'], (string) ($error['message'] ?? ''), $response->status, $error);
        }
        return new ApiException('http_' . $response->status, Response::excerpt($response->body), $response->status);
    }

    private function requireResult(Job $job): Result
    {
        if ($job->result === null) {
            throw new JobFailedException($job->jobId, $job->status, $job->error ?? []);
        }
        return $job->result;
    }

    /** The transport's time limit plus a second per MiB sent, as plasm/client.py allows an upload. */
    private function uploadTimeout(int $bytes): ?float
    {
        if (!$this->transport instanceof CurlTransport) {
            return null;
        }
        return $this->transport->timeoutSeconds() + $bytes / (1 << 20);
    }

    private function waitTimeout(?int $waitSeconds): ?float
    {
        if ($waitSeconds === null || !$this->transport instanceof CurlTransport) {
            return null;
        }
        return $waitSeconds + $this->transport->timeoutSeconds();
    }
}
