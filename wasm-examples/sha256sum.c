/* sha256sum: a SHA-256 manifest of every regular file under /input.
 *
 * Walks /input (opendir/readdir, recursing into directories, skipping anything that is neither
 * a regular file nor a directory), sorts the relative paths by byte value (like `LC_ALL=C sort`)
 * and, for each, writes "<64 hex digits>  <relative path>\n" to /output/SHA256SUMS and the same
 * lines to stdout. Any error -> "sha256sum: <what>: <strerror>" on stderr and exit code 1, e.g.
 * "sha256sum: cannot open /input: ..." when the sandbox gives the job no /input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ROOT "/input"
#define MANIFEST "/output/SHA256SUMS"

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct {
    uint32_t state[8];
    uint64_t length;
    unsigned char block[64];
    size_t used;
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_init(sha256_ctx *ctx)
{
    static const uint32_t initial[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(ctx->state, initial, sizeof initial);
    ctx->length = 0;
    ctx->used = 0;
}

static void sha256_block(sha256_ctx *ctx, const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16
             | (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = ctx->state[0], b = ctx->state[1], c = ctx->state[2], d = ctx->state[3];
    uint32_t e = ctx->state[4], f = ctx->state[5], g = ctx->state[6], h = ctx->state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    ctx->state[0] += a; ctx->state[1] += b; ctx->state[2] += c; ctx->state[3] += d;
    ctx->state[4] += e; ctx->state[5] += f; ctx->state[6] += g; ctx->state[7] += h;
}

static void sha256_update(sha256_ctx *ctx, const unsigned char *data, size_t len)
{
    ctx->length += len;
    while (len > 0) {
        size_t take = 64 - ctx->used;
        if (take > len)
            take = len;
        memcpy(ctx->block + ctx->used, data, take);
        ctx->used += take;
        data += take;
        len -= take;
        if (ctx->used == 64) {
            sha256_block(ctx, ctx->block);
            ctx->used = 0;
        }
    }
}

static void sha256_hex(sha256_ctx *ctx, char hex[65])
{
    uint64_t bits = ctx->length * 8;
    unsigned char pad[72] = {0x80};
    size_t pad_len = (ctx->used < 56 ? 56 : 120) - ctx->used;
    for (int i = 0; i < 8; i++)
        pad[pad_len + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(ctx, pad, pad_len + 8);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned)(ctx->state[i / 4] >> (24 - 8 * (i % 4))) & 0xff);
}

/* ---- the walk ---- */

static char **paths;
static size_t path_count, path_capacity;

static void fail(const char *what, const char *path)
{
    fprintf(stderr, "sha256sum: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *out = malloc(la + lb + 2);
    if (out == NULL) {
        fprintf(stderr, "sha256sum: out of memory\n");
        exit(1);
    }
    memcpy(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb + 1);
    return out;
}

/* Adds every regular file under ROOT/rel (rel "" is ROOT itself) to paths, relative to ROOT. */
static void walk(const char *rel)
{
    char *dir_path = rel[0] ? join(ROOT, rel) : strdup(ROOT);
    DIR *dir = opendir(dir_path);
    if (dir == NULL)
        fail("cannot open", dir_path);
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(dir);
        if (entry == NULL) {
            if (errno != 0)
                fail("cannot read", dir_path);
            break;
        }
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char *child_rel = rel[0] ? join(rel, entry->d_name) : strdup(entry->d_name);
        char *child = join(ROOT, child_rel);
        struct stat info;
        if (lstat(child, &info) != 0)
            fail("cannot stat", child);
        if (S_ISDIR(info.st_mode)) {
            walk(child_rel);
            free(child_rel);
        } else if (S_ISREG(info.st_mode)) {
            if (path_count == path_capacity) {
                path_capacity = path_capacity ? 2 * path_capacity : 64;
                paths = realloc(paths, path_capacity * sizeof *paths);
                if (paths == NULL) {
                    fprintf(stderr, "sha256sum: out of memory\n");
                    exit(1);
                }
            }
            paths[path_count++] = child_rel;
        } else {
            free(child_rel);
        }
        free(child);
    }
    closedir(dir);
    free(dir_path);
}

static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void hash_file(const char *rel, char hex[65])
{
    static unsigned char buffer[65536];
    char *path = join(ROOT, rel);
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        fail("cannot open", path);
    sha256_ctx ctx;
    sha256_init(&ctx);
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, file)) > 0)
        sha256_update(&ctx, buffer, got);
    if (ferror(file))
        fail("cannot read", path);
    fclose(file);
    free(path);
    sha256_hex(&ctx, hex);
}

int main(void)
{
    walk("");
    qsort(paths, path_count, sizeof *paths, by_bytes);
    FILE *manifest = fopen(MANIFEST, "w");
    if (manifest == NULL)
        fail("cannot open", MANIFEST);
    for (size_t i = 0; i < path_count; i++) {
        char hex[65];
        hash_file(paths[i], hex);
        if (fprintf(manifest, "%s  %s\n", hex, paths[i]) < 0)
            fail("cannot write", MANIFEST);
        printf("%s  %s\n", hex, paths[i]);
    }
    if (fclose(manifest) != 0)
        fail("cannot write", MANIFEST);
    return fflush(stdout) == 0 ? 0 : 1;
}
