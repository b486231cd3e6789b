/* A float-heavy job whose output is the same on every node: an n-body step loop in double
 * precision, plus NaNs made by arithmetic (whose bit patterns the engine canonicalizes).
 * argv[1]: steps (default 20000).
 *
 *   plasmd execute-job wasm-examples/floats.wasm -- 100000
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 5

static double px[N] = {0, 4.84, 8.34, 12.89, 15.37};
static double py[N] = {0, -1.16, 4.12, -15.11, -25.91};
static double vx[N] = {0, 0.606, -0.276, 0.296, 0.268};
static double vy[N] = {0, 2.81, 1.83, 0.87, 0.59};
static double m[N] = {39.47, 0.037, 0.011, 0.0017, 0.002};

static uint64_t bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    double dt = 0.01, energy = 0;
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < N; i++)
            for (int j = i + 1; j < N; j++) {
                double dx = px[i] - px[j], dy = py[i] - py[j];
                double d2 = dx * dx + dy * dy + 1e-9;
                double mag = dt / (d2 * sqrt(d2));
                vx[i] -= dx * m[j] * mag; vy[i] -= dy * m[j] * mag;
                vx[j] += dx * m[i] * mag; vy[j] += dy * m[i] * mag;
            }
        for (int i = 0; i < N; i++) { px[i] += dt * vx[i]; py[i] += dt * vy[i]; }
    }
    for (int i = 0; i < N; i++) energy += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i]);
    volatile double zero = 0.0;
    double nan = zero / zero, nan2 = sqrt(-1.0 + zero) * nan;
    printf("steps %ld energy %.17g\n", steps, energy);
    printf("body0 %.17g %.17g\n", px[0], py[0]);
    printf("nan bits %016llx %016llx\n", (unsigned long long)bits(nan), (unsigned long long)bits(nan2));
    return 0;
}
