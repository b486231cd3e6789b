/* The cross-architecture job: reads the wall clock, the monotonic clock and random bytes
 * (WASI clock_time_get and random_get), then computes with them in floating point: a
 * chaotic logistic map seeded from the random bytes and the clock (one rounding difference
 * would change every later digit), libm's sin/exp/log/pow (musl's, compiled into the
 * module), single and double precision, and NaNs made by arithmetic whose bits the engine
 * canonicalizes. argv[1]: steps (default 2000). Prints every result with its bits.
 *
 *   plasmd execute-job wasm-examples/clock_floats.wasm -- 2000
 */
#define _DEFAULT_SOURCE /* M_PI */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static uint64_t bits64(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static uint32_t bits32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static double from_bits(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    __wasi_timestamp_t wall, mono1, mono2;
    uint8_t random[16];
    if (__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &wall) != 0 ||
        __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &mono1) != 0 ||
        __wasi_random_get(random, sizeof random) != 0 ||
        __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &mono2) != 0) {
        fputs("clock_floats: a clock or random_get failed\n", stderr);
        return 1;
    }
    uint64_t r0, r1;
    memcpy(&r0, random, 8);
    memcpy(&r1, random + 8, 8);
    /* Seeds in [0, 1) from the random bits, and from the clock in seconds. */
    double x = (double)(r0 >> 11) * 0x1p-53;
    double y = (double)(r1 >> 11) * 0x1p-53;
    double t = (double)wall * 1e-9;
    double dt = (double)(mono2 - mono1) * 1e-9;
    float xf = (float)y;
    double acc = 0, trig = 0;
    for (long i = 0; i < steps; i++) {
        x = 3.99 * x * (1.0 - x);                  /* chaotic: rounding shows at once */
        xf = 3.7f * xf * (1.0f - xf);              /* the same in single precision */
        acc += sqrt(x) / (1.0 + x * x) + fma(x, dt, t * 1e-12);
        trig += sin(x * M_PI) * exp(-x) + log1p(x) - pow(x, 1.5) + cos((double)xf);
    }
    volatile double zero = 0.0;
    volatile uint64_t signalling = 0x7ff4000000000123ULL;  /* a NaN with a payload */
    double nan = zero / zero;                      /* x86 makes a negative NaN, arm positive */
    double payload = from_bits(signalling) + zero; /* kept, quieted or dropped by the CPU */
    float nanf = (float)(zero / zero) * 2.0f;
    printf("clock %llu ns, monotonic step %llu ns\n", (unsigned long long)wall,
           (unsigned long long)(mono2 - mono1));
    printf("random %016llx%016llx\n", (unsigned long long)r0, (unsigned long long)r1);
    printf("steps %ld\n", steps);
    printf("x %.17g %016llx\n", x, (unsigned long long)bits64(x));
    printf("xf %.9g %08x\n", (double)xf, bits32(xf));
    printf("acc %.17g %016llx\n", acc, (unsigned long long)bits64(acc));
    printf("trig %.17g %016llx\n", trig, (unsigned long long)bits64(trig));
    printf("nan bits %016llx %016llx %08x\n", (unsigned long long)bits64(nan),
           (unsigned long long)bits64(payload), bits32(nanf));
    return 0;
}
