<?php

/*
 * A tiny HTTP/1.1 server for client tests: it answers requests, in order, with the responses
 * listed in a JSON script ({"status", "headers", "body", "delay_ms"}), over a Unix socket or
 * loopback TCP on a free port, and logs every request it received as a JSON line. It writes
 * its address to the ready file once listening. Run and stopped (by PID) by ScriptedServer.
 *
 * usage: php scripted_server.php unix:/path/to.sock|tcp SCRIPT.json LOG.jsonl READY
 */

declare(strict_types=1);

[, $listen, $scriptFile, $logFile, $readyFile] = $argv;
$script = json_decode((string) file_get_contents($scriptFile), true, 64, JSON_THROW_ON_ERROR);
$address = $listen === 'tcp' ? 'tcp://127.0.0.1:0' : 'unix://' . substr($listen, 5);
$server = stream_socket_server($address, $errno, $error);
if ($server === false) {
    fwrite(STDERR, "cannot listen on $address: $error\n");
    exit(1);
}
$name = $listen === 'tcp' ? stream_socket_get_name($server, false) : substr($listen, 5);
file_put_contents($readyFile . '.tmp', (string) $name);
rename($readyFile . '.tmp', $readyFile);

$next = 0;
while ($connection = @stream_socket_accept($server, -1)) {
    while (($request = read_request($connection)) !== null) {
        file_put_contents($logFile, json_encode($request) . "\n", FILE_APPEND);
        $response = $script[$next++] ?? ['status' => 500, 'body' => '{"error":{"code":"script_exhausted","message":"no more scripted responses"}}'];
        usleep(1000 * (int) ($response['delay_ms'] ?? 0));
        $body = (string) ($response['body'] ?? '');
        $head = sprintf("HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", $response['status'], strlen($body));
        foreach ($response['headers'] ?? [] as $header => $value) {
            $head .= "$header: $value\r\n";
        }
        if (@fwrite($connection, $head . "\r\n" . $body) === false) {
            break;
        }
    }
    fclose($connection);
}

/** @return array<string, mixed>|null method, path, headers (lowercased), body base64 */
function read_request($connection): ?array
{
    $line = fgets($connection);
    if ($line === false || trim($line) === '') {
        return null;
    }
    [$method, $path] = explode(' ', trim($line));
    $headers = [];
    while (($header = fgets($connection)) !== false && trim($header) !== '') {
        [$key, $value] = explode(':', $header, 2);
        $headers[strtolower(trim($key))] = trim($value);
    }
    $length = (int) ($headers['content-length'] ?? 0);
    $body = '';
    while (strlen($body) < $length && !feof($connection)) {
        $body .= fread($connection, $length - strlen($body));
    }
    return ['method' => $method, 'path' => $path, 'headers' => $headers, 'body' => base64_encode($body)];
}
