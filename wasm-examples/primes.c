/* primes: counts the primes below N by trial division and prints the count.
 *
 * N is argv[1] in decimal (default 100000), 0 <= N <= 4294967295. Deliberately CPU-heavy and
 * integer only: the same N always does the same work, so the fuel a run uses is deterministic.
 * primes 100000 -> "9592\n"; a bad N -> a message on stderr and exit code 2.
 */
#include <stdint.h>
#include <stdio.h>

static int parse_n(const char *text, uint32_t *out)
{
    uint64_t value = 0;
    if (*text == '\0')
        return -1;
    for (; *text != '\0'; text++) {
        if (*text < '0' || *text > '9')
            return -1;
        value = value * 10 + (uint64_t)(*text - '0');
        if (value > UINT32_MAX)
            return -1;
    }
    *out = (uint32_t)value;
    return 0;
}

static int is_prime(uint32_t n)
{
    if (n < 2)
        return 0;
    if (n % 2 == 0)
        return n == 2;
    for (uint64_t d = 3; d * d <= n; d += 2) {
        if (n % d == 0)
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    uint32_t n = 100000;
    if (argc > 2 || (argc == 2 && parse_n(argv[1], &n) != 0)) {
        fprintf(stderr, "usage: primes [N]  (count the primes below N, 0 <= N < 2^32)\n");
        return 2;
    }
    uint32_t count = 0;
    for (uint32_t i = 2; i < n; i++)
        count += (uint32_t)is_prime(i);
    printf("%u\n", (unsigned)count);
    return 0;
}
