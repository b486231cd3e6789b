<?php

declare(strict_types=1);

namespace Plasm\Transport;

/** One HTTP-shaped request to a node: method, path with query, optional body, time limit. */
final class Request
{
    public function __construct(
        public readonly string $method,
        public readonly string $path,
        public readonly ?string $body = null,
        public readonly string $contentType = 'application/json',
        public readonly ?float $timeoutSeconds = null,
    ) {
    }

    /** The path without its query string. */
    public function route(): string
    {
        return explode('?', $this->path, 2)[0];
    }

    /** @return array<string, string> */
    public function query(): array
    {
        $query = parse_url('http://localhost' . $this->path, PHP_URL_QUERY);
        $params = [];
        parse_str(is_string($query) ? $query : '', $params);
        return array_map('strval', array_filter($params, 'is_scalar'));
    }
}
