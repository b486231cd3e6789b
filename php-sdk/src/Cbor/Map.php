<?php

declare(strict_types=1);

namespace Plasm\Cbor;

/**
 * A decoded CBOR map with text keys, in the order the encoder wrote them. A separate class
 * (not a PHP array) so that an empty map and an empty array stay different things, and so
 * that keys such as "1" are not turned into integers by PHP.
 *
 * @implements \IteratorAggregate<string, mixed>
 */
final class Map implements \Countable, \IteratorAggregate
{
    /** @var array<string, mixed> keys are stored with a prefix so PHP never casts them */
    private array $entries = [];

    /** @param iterable<string, mixed> $entries */
    public function __construct(iterable $entries = [])
    {
        foreach ($entries as $key => $value) {
            $this->entries['k' . $key] = $value;
        }
    }

    /** @internal used by the decoder, which checks for duplicates first */
    public function set(string $key, mixed $value): void
    {
        $this->entries['k' . $key] = $value;
    }

    public function has(string $key): bool
    {
        return array_key_exists('k' . $key, $this->entries);
    }

    public function get(string $key): mixed
    {
        if (!$this->has($key)) {
            throw new \OutOfBoundsException(sprintf('map has no key "%s"', $key));
        }
        return $this->entries['k' . $key];
    }

    /** @return list<string> */
    public function keys(): array
    {
        return array_map(static fn (string|int $k): string => substr((string) $k, 1), array_keys($this->entries));
    }

    public function count(): int
    {
        return count($this->entries);
    }

    public function getIterator(): \Generator
    {
        foreach ($this->entries as $key => $value) {
            yield substr((string) $key, 1) => $value;
        }
    }
}
