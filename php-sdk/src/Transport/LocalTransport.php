<?php

declare(strict_types=1);

namespace Plasm\Transport;

use Plasm\Exception\TimeoutException;
use Plasm\Exception\TransportException;
use Plasm\Exception\UnsupportedOperationException;

/*
 * Theory of operation: no daemon. Each submitted job runs as one `plasmd execute-job MODULE
 * --json` process (the node's actors, in that process, for one job), which prints the
 * job-result JSON, signed receipt included, on stdout. The manifest becomes command-line
 * options: the module, stdin and input files go through temporary files (--input GUEST=HOST;
 * all removed afterwards), args, env, limits and determinism through --arg/--env/--fuel/
 * --memory/--timeout/--max-output/the file quotas/--determinism/--seed/--epoch-ms, and the job's output
 * files come back through --output-dir. This transport answers the subset of the HTTP API
 * that makes sense without a daemon, so Client works unchanged: POST /v1/modules and POST
 * /v1/blobs keep the bytes in memory (so manifests naming them by sha256 work), POST
 * /v1/jobs runs the job to completion, GET /v1/jobs[/{id}] replays the jobs this transport
 * ran and GET /v1/jobs/{id}/outputs/{path} their output files (kept in memory too),
 * GET /v1/health is always ok. Anything needing a node — peers, node info,
 * cancel, server-side verify, placement on another peer — raises
 * UnsupportedOperationException. A process that outlives the time limit gets SIGTERM, then
 * SIGKILL, and TimeoutException is raised.
 */
final class LocalTransport implements Transport
{
    /** @var array<string, string> sha256 => module bytes */
    private array $modules = [];
    /** @var array<string, string> sha256 => blob bytes */
    private array $blobs = [];
    /** @var array<string, array<string, mixed>> job id => job-result */
    private array $jobs = [];
    /** @var array<string, array<string, string>> job id => guest path => output file bytes */
    private array $outputs = [];

    /**
     * @param string $plasmd path of the plasmd executable
     * @param string|null $stateDir the node state (its key signs the receipts); null for
     *                              plasmd's default ($PLASM_STATE_DIR, else $XDG_DATA_HOME/plasmd)
     */
    public function __construct(
        private readonly string $plasmd = 'plasmd',
        private readonly ?string $stateDir = null,
        private readonly float $timeoutSeconds = 60.0,
    ) {
    }

    public function send(Request $request): Response
    {
        $route = $request->route();
        return match (true) {
            $request->method === 'GET' && $route === '/v1/health' => Response::json(200, ['status' => 'ok']),
            $request->method === 'POST' && $route === '/v1/modules' => $this->storeModule((string) $request->body),
            $request->method === 'POST' && $route === '/v1/blobs' => $this->storeBlob((string) $request->body, $request->query()['sha256'] ?? null),
            $request->method === 'POST' && $route === '/v1/jobs' => $this->execute($request),
            $request->method === 'GET' && $route === '/v1/jobs' => $this->listJobs(),
            $request->method === 'GET' && preg_match('#\A/v1/jobs/([^/]+)/outputs/(.+)\z#', $route, $m) === 1 => $this->output(rawurldecode($m[1]), '/output/' . rawurldecode($m[2])),
            $request->method === 'GET' && str_starts_with($route, '/v1/jobs/') => $this->getJob(substr($route, strlen('/v1/jobs/'))),
            default => throw new UnsupportedOperationException(sprintf('%s %s needs a running daemon; LocalTransport only runs jobs with plasmd execute-job (connect to plasmd run over its socket instead)', $request->method, $route)),
        };
    }

    private function storeModule(string $wasm): Response
    {
        $sha256 = hash('sha256', $wasm);
        $this->modules[$sha256] = $wasm;
        return Response::json(200, ['sha256' => $sha256]);
    }

    private function storeBlob(string $bytes, ?string $expected): Response
    {
        $sha256 = hash('sha256', $bytes);
        if ($expected !== null && $expected !== $sha256) {
            return self::error(400, 'hash_mismatch', sprintf('the bytes sent have sha256 %s, not %s', $sha256, $expected));
        }
        $this->blobs[$sha256] = $bytes;
        return Response::json(200, ['sha256' => $sha256, 'size' => strlen($bytes)]);
    }

    private function output(string $jobId, string $path): Response
    {
        $bytes = $this->outputs[$jobId][$path] ?? null;
        if ($bytes === null) {
            return self::error(404, 'output_not_found', sprintf('job %s run through this LocalTransport left no output file %s', $jobId, $path));
        }
        return new Response(200, $bytes, ['content-type' => 'application/octet-stream']);
    }

    private function execute(Request $request): Response
    {
        $manifest = json_decode((string) $request->body, true);
        if (!is_array($manifest)) {
            return self::error(400, 'invalid_manifest', 'the manifest is not a JSON object');
        }
        $mode = $manifest['placement']['mode'] ?? 'local';
        if ($mode !== 'local') {
            throw new UnsupportedOperationException(sprintf('placement "%s" needs a running daemon with peers; LocalTransport runs jobs here only', $mode));
        }
        if (isset($manifest['module'])) {
            $wasm = base64_decode((string) $manifest['module'], true);
            if ($wasm === false) {
                return self::error(400, 'invalid_manifest', 'the module is not valid base64');
            }
        } else {
            $wasm = $this->modules[(string) ($manifest['module_sha256'] ?? '')] ?? null;
            if ($wasm === null) {
                return self::error(404, 'unknown_module', 'no module with this sha256 was uploaded through this LocalTransport');
            }
        }
        $stdin = base64_decode((string) ($manifest['stdin'] ?? ''), true);
        if ($stdin === false) {
            return self::error(400, 'invalid_manifest', 'stdin is not valid base64');
        }
        $dir = $this->makeTempDir();
        try {
            $moduleFile = $dir . '/' . self::safeName((string) ($manifest['module_name'] ?? 'module.wasm'));
            $stdinFile = $dir . '/stdin';
            file_put_contents($moduleFile, $wasm);
            file_put_contents($stdinFile, $stdin);
            mkdir($dir . '/inputs', 0700);
            $command = [$this->plasmd, 'execute-job', $moduleFile, '--json', '--stdin-file=' . $stdinFile, '--output-dir=' . $dir . '/outputs'];
            foreach (array_values((array) ($manifest['files'] ?? [])) as $i => $file) {
                $guest = (string) ($file['path'] ?? '');
                $bytes = isset($file['content']) ? base64_decode((string) $file['content'], true) : ($this->blobs[(string) ($file['sha256'] ?? '')] ?? null);
                if ($bytes === null || $bytes === false) {
                    return isset($file['content'])
                        ? self::error(400, 'invalid_manifest', sprintf('the content of input file %s is not valid base64', $guest))
                        : self::error(404, 'unknown_blob', sprintf('input file %s names a blob that was not uploaded through this LocalTransport', $guest));
                }
                if (str_contains($guest, '=')) {
                    throw new UnsupportedOperationException(sprintf('input file %s has "=" in its path, which plasmd execute-job --input GUEST=HOST cannot express; run it on a daemon', $guest));
                }
                file_put_contents($dir . "/inputs/$i", $bytes);
                $command[] = '--input=' . $guest . '=' . $dir . "/inputs/$i";
            }
            if (($manifest['determinism'] ?? 'on') === 'off') {
                $command[] = '--determinism=off';
            }
            if (isset($manifest['seed'])) {
                $command[] = '--seed=' . $manifest['seed'];
            }
            if (isset($manifest['epoch_ms'])) {
                $command[] = '--epoch-ms=' . (int) $manifest['epoch_ms'];
            }
            foreach ((array) ($manifest['args'] ?? []) as $arg) {
                $command[] = '--arg=' . $arg;
            }
            foreach ((array) ($manifest['env'] ?? []) as $name => $value) {
                $command[] = '--env=' . $name . '=' . $value;
            }
            $limits = (array) ($manifest['limits'] ?? []);
            $options = [
                'fuel' => '--fuel=',
                'memory_bytes' => '--memory=',
                'max_output_bytes' => '--max-output=',
                'max_input_files_bytes' => '--max-input-files=',
                'max_output_files_bytes' => '--max-output-files=',
                'max_output_file_bytes' => '--max-output-file=',
                'max_output_files' => '--max-output-count=',
            ];
            foreach ($options as $limit => $option) {
                if (isset($limits[$limit])) {
                    $command[] = $option . (int) $limits[$limit];
                }
            }
            if (isset($limits['timeout_ms'])) {
                $command[] = sprintf('--timeout=%.3F', ((int) $limits['timeout_ms']) / 1000);
            }
            if ($this->stateDir !== null) {
                $command[] = '--state-dir=' . $this->stateDir;
            }
            [$exitCode, $stdout, $stderr] = $this->runProcess($command, $request->timeoutSeconds ?? $this->timeoutSeconds);
            $json = json_decode($stdout, true);
            if (is_array($json) && isset($json['job_id'], $json['outcome'])) {
                $this->jobs[(string) $json['job_id']] = $json;
                $this->outputs[(string) $json['job_id']] = self::readOutputs($dir . '/outputs', (array) ($json['outputs'] ?? []));
                return Response::json(200, $json);
            }
        } finally {
            self::removeTree($dir);
        }
        if (is_array($json) && is_array($json['error'] ?? null)) {
            return Response::json(400, $json);
        }
        if ($exitCode === 2 && $stdout === '') {
            return self::error(400, 'invalid_manifest', Response::excerpt($stderr));
        }
        throw new TransportException(sprintf('plasmd execute-job exited with status %d without a job result: %s', $exitCode, Response::excerpt($stderr !== '' ? $stderr : $stdout)));
    }

    private function makeTempDir(): string
    {
        $dir = sys_get_temp_dir() . '/plasm-job-' . bin2hex(random_bytes(8));
        if (!@mkdir($dir, 0700)) {
            throw new TransportException(sprintf('cannot create the temporary directory %s for the job', $dir));
        }
        return $dir;
    }

    /**
     * The files execute-job saved under $directory for the outputs its result lists; one it
     * did not save is left out (fetching it then answers 404).
     *
     * @param array<mixed> $listed
     * @return array<string, string> guest path => bytes
     */
    private static function readOutputs(string $directory, array $listed): array
    {
        $files = [];
        foreach ($listed as $output) {
            $path = is_array($output) ? (string) ($output['path'] ?? '') : '';
            $relative = substr($path, strlen('/output/'));
            if (!str_starts_with($path, '/output/') || in_array('..', explode('/', $relative), true)) {
                continue;
            }
            $bytes = is_file("$directory/$relative") ? @file_get_contents("$directory/$relative") : false;
            if ($bytes !== false) {
                $files[$path] = $bytes;
            }
        }
        return $files;
    }

    private static function removeTree(string $path): void
    {
        if (is_dir($path) && !is_link($path)) {
            foreach (scandir($path) ?: [] as $entry) {
                if ($entry !== '.' && $entry !== '..') {
                    self::removeTree("$path/$entry");
                }
            }
            @rmdir($path);
        } elseif (file_exists($path) || is_link($path)) {
            @unlink($path);
        }
    }

    private static function safeName(string $name): string
    {
        $name = basename($name);
        return preg_match('/\A[A-Za-z0-9._-]{1,100}\z/', $name) === 1 && $name !== '.' && $name !== '..' && $name !== 'stdin' ? $name : 'module.wasm';
    }

    private function listJobs(): Response
    {
        $jobs = [];
        foreach ($this->jobs as $id => $result) {
            $jobs[] = ['job_id' => $id, 'status' => $result['status'] ?? 'done'];
        }
        return Response::json(200, ['jobs' => $jobs]);
    }

    private function getJob(string $jobId): Response
    {
        $result = $this->jobs[$jobId] ?? null;
        if ($result === null) {
            return self::error(404, 'job_not_found', sprintf('job %s was not run through this LocalTransport', $jobId));
        }
        return Response::json(200, ['job_id' => $jobId, 'status' => $result['status'] ?? 'done', 'result' => $result]);
    }

    /**
     * @param list<string> $command
     * @return array{0: int, 1: string, 2: string} exit code, stdout, stderr
     */
    private function runProcess(array $command, float $timeoutSeconds): array
    {
        $pipes = [];
        $process = @proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        if (!is_resource($process)) {
            throw new TransportException(sprintf('cannot run %s; install plasmd or pass its path to LocalTransport', $this->plasmd));
        }
        $output = [1 => '', 2 => ''];
        $open = [1 => $pipes[1], 2 => $pipes[2]];
        foreach ($open as $pipe) {
            stream_set_blocking($pipe, false);
        }
        $deadline = microtime(true) + $timeoutSeconds;
        while ($open !== []) {
            $remaining = $deadline - microtime(true);
            if ($remaining <= 0) {
                $this->kill($process, $open);
                throw new TimeoutException(sprintf('plasmd execute-job did not finish within %.1f s and was stopped', $timeoutSeconds));
            }
            $read = array_values($open);
            $write = $except = null;
            if (@stream_select($read, $write, $except, (int) $remaining, (int) (fmod($remaining, 1.0) * 1e6)) === false) {
                continue; // interrupted by a signal: recompute the deadline and wait again
            }
            foreach ($open as $fd => $pipe) {
                $chunk = fread($pipe, 65536);
                if ($chunk !== false && $chunk !== '') {
                    $output[$fd] .= $chunk;
                } elseif (feof($pipe)) {
                    fclose($pipe);
                    unset($open[$fd]);
                }
            }
        }
        return [proc_close($process), $output[1], $output[2]];
    }

    /**
     * @param resource $process
     * @param array<int, resource> $pipes
     */
    private function kill($process, array $pipes): void
    {
        proc_terminate($process, 15);
        $deadline = microtime(true) + 2.0;
        while (proc_get_status($process)['running'] && microtime(true) < $deadline) {
            usleep(20_000);
        }
        if (proc_get_status($process)['running']) {
            proc_terminate($process, 9);
        }
        foreach ($pipes as $pipe) {
            fclose($pipe);
        }
        proc_close($process);
    }

    private static function error(int $status, string $code, string $message): Response
    {
        return Response::json($status, ['error' => ['code' => $code, 'message' => $message]]);
    }
}
