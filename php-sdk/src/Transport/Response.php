<?php

declare(strict_types=1);

namespace Plasm\Transport;

use Plasm\Exception\PlasmException;

/** A node's answer: status, headers (names lowercased), body. */
final class Response
{
    /** @param array<string, string> $headers */
    public function __construct(
        public readonly int $status,
        public readonly string $body,
        public readonly array $headers = [],
    ) {
    }

    /** @param array<string, mixed> $data */
    public static function json(int $status, array $data): self
    {
        return new self($status, json_encode($data, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES), ['content-type' => 'application/json']);
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }

    /** @return array<string, mixed> */
    public function decodeJson(): array
    {
        try {
            $data = json_decode($this->body, true, 64, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new PlasmException(sprintf('the node answered HTTP %d with a body that is not JSON: %s', $this->status, self::excerpt($this->body)), 0, $e);
        }
        if (!is_array($data)) {
            throw new PlasmException(sprintf('the node answered HTTP %d with JSON that is not an object', $this->status));
        }
        return $data;
    }

    public static function excerpt(string $text, int $max = 200): string
    {
        $text = trim($text);
        return strlen($text) > $max ? substr($text, 0, $max) . '...' : $text;
    }
}
