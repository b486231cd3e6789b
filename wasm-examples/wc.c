/* wc: counts the lines, words and bytes of stdin and prints "lines words bytes\n".
 *
 * Like `wc` in the C locale: a line is a "\n", a word is a maximal run of bytes that are not
 * space, \t, \n, \v, \f or \r. Stdin "a b\nc\n" -> "2 3 6\n"; empty stdin -> "0 0 0\n".
 * A read error -> a message on stderr and exit code 1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

int main(void)
{
    static unsigned char buffer[65536];
    uint64_t lines = 0, words = 0, bytes = 0;
    int in_word = 0;
    for (;;) {
        ssize_t got = read(0, buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "wc: cannot read stdin: %s\n", strerror(errno));
            return 1;
        }
        if (got == 0)
            break;
        bytes += (uint64_t)got;
        for (ssize_t i = 0; i < got; i++) {
            unsigned char c = buffer[i];
            if (c == '\n')
                lines++;
            if (is_space(c)) {
                in_word = 0;
            } else if (!in_word) {
                in_word = 1;
                words++;
            }
        }
    }
    printf("%llu %llu %llu\n", (unsigned long long)lines, (unsigned long long)words,
           (unsigned long long)bytes);
    return 0;
}
