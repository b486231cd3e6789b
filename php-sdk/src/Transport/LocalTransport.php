<?php

declare(strict_types=1);

namespace Plasm\Transport;

use Plasm\Exception\TimeoutException;
use Plasm\Exception\TransportException;
use Plasm\Exception\UnsupportedOperationException;

/*
 * Theory of operation: no daemon. Each submitted job runs as one
 * `plasmd execute-job --json --manifest FILE` process, FILE holding the same manifest JSON the
 * HTTP API takes; the process prints the job-result JSON (signed receipt included) on stdout.
 * This transport answers the subset of the HTTP API that makes sense without a daemon, so
 * Client works unchanged: POST /v1/modules keeps module bytes in memory (so manifests by
 * sha256 work), POST /v1/jobs runs the job to completion, GET /v1/jobs[/{id}] replays the
 * jobs this transport ran, GET /v1/health is always ok. Anything needing a node — peers,
 * node info, cancel, server-side verify — raises UnsupportedOperationException. A process
 * that outlives the time limit is sent SIGTERM, then SIGKILL, and TimeoutException is raised.
 */
final class LocalTransport implements Transport
{
    /** @var array<string, string> sha256 => module bytes */
    private array $modules = [];
    /** @var array<string, array<string, mixed>> job id => job-result */
    private array $jobs = [];

    /**
     * @param string $plasmd path of the plasmd executable
     * @param list<string> $extraArgs more arguments for execute-job (e.g. a key file option)
     */
    public function __construct(
        private readonly string $plasmd = 'plasmd',
        private readonly array $extraArgs = [],
        private readonly float $timeoutSeconds = 60.0,
    ) {
    }

    public function send(Request $request): Response
    {
        $route = $request->route();
        return match (true) {
            $request->method === 'GET' && $route === '/v1/health' => Response::json(200, ['status' => 'ok']),
            $request->method === 'POST' && $route === '/v1/modules' => $this->storeModule((string) $request->body),
            $request->method === 'POST' && $route === '/v1/jobs' => $this->execute($request),
            $request->method === 'GET' && $route === '/v1/jobs' => $this->listJobs(),
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

    private function execute(Request $request): Response
    {
        $manifest = json_decode((string) $request->body, true);
        if (!is_array($manifest)) {
            return self::error(400, 'invalid_manifest', 'the manifest is not a JSON object');
        }
        if (isset($manifest['module_sha256']) && !isset($manifest['module'])) {
            $wasm = $this->modules[$manifest['module_sha256']] ?? null;
            if ($wasm === null) {
                return self::error(404, 'module_not_found', 'no module with this sha256 was uploaded through this LocalTransport');
            }
            unset($manifest['module_sha256']);
            $manifest['module'] = base64_encode($wasm);
        }
        $file = tempnam(sys_get_temp_dir(), 'plasm-manifest-');
        if ($file === false) {
            throw new TransportException('cannot create a temporary file for the manifest');
        }
        try {
            file_put_contents($file, json_encode($manifest, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES));
            [$exitCode, $stdout, $stderr] = $this->runProcess(
                [$this->plasmd, 'execute-job', '--json', '--manifest', $file, ...$this->extraArgs],
                $request->timeoutSeconds ?? $this->timeoutSeconds,
            );
        } finally {
            @unlink($file);
        }
        $json = json_decode($stdout, true);
        if (is_array($json) && isset($json['job_id'], $json['outcome'])) {
            $this->jobs[(string) $json['job_id']] = $json;
            return Response::json(200, $json);
        }
        if (is_array($json) && is_array($json['error'] ?? null)) {
            return Response::json(400, $json);
        }
        throw new TransportException(sprintf('plasmd execute-job exited with status %d without a job result: %s', $exitCode, Response::excerpt($stderr !== '' ? $stderr : $stdout)));
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
