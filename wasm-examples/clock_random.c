/* What the determinism profile is for: a program that reads the wall clock, a monotonic
 * clock and random bytes, and prints them. Under `wasi-p1-det/1` (the default) every node
 * prints the same lines for the same job; with "determinism": "off" each run differs.
 *
 *   plasmd execute-job wasm-examples/clock_random.wasm
 */
#define _DEFAULT_SOURCE /* getentropy */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec wall, mono1, mono2;
    unsigned char bytes[16];
    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono1);
    clock_gettime(CLOCK_MONOTONIC, &mono2);
    if (getentropy(bytes, sizeof bytes) != 0) {
        perror("getentropy");
        return 1;
    }
    printf("time %lld.%09ld\n", (long long)wall.tv_sec, wall.tv_nsec);
    printf("monotonic step %lld ns\n",
           (long long)(mono2.tv_sec - mono1.tv_sec) * 1000000000LL + (mono2.tv_nsec - mono1.tv_nsec));
    printf("random ");
    for (unsigned i = 0; i < sizeof bytes; i++) printf("%02x", bytes[i]);
    printf("\n");
    return 0;
}
