/* copyfiles: copies every regular file under /input to the same path under /output.
 *
 * Walks /input (opendir/readdir, recursing into directories in readdir order), makes each
 * directory under /output (mkdir) and copies each file's bytes (fopen/fread/fwrite, 64 KiB at
 * a time), then prints "<bytes> <relative path>\n" for it on stdout. Any error ->
 * "copyfiles: <what>: <strerror>" on stderr and exit code 1 (a full /output, say).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FROM "/input"
#define TO "/output"

static char buffer[65536];

static void fail(const char *what, const char *path)
{
    fprintf(stderr, "copyfiles: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void copy_file(const char *from, const char *to, const char *relative)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        fail("cannot open", from);
    FILE *out = fopen(to, "wb");
    if (!out)
        fail("cannot create", to);
    unsigned long long total = 0;
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) {
        if (fwrite(buffer, 1, n, out) != n)
            fail("cannot write", to);
        total += n;
    }
    if (ferror(in))
        fail("cannot read", from);
    fclose(in);
    if (fclose(out) != 0)
        fail("cannot write", to);
    printf("%llu %s\n", total, relative);
}

static void copy_tree(const char *relative)
{
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s%s", FROM, relative);
    DIR *dir = opendir(from);
    if (!dir)
        fail("cannot open", from);
    struct dirent *entry;
    while ((errno = 0, entry = readdir(dir)) != NULL) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, ".."))
            continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", relative, entry->d_name);
        snprintf(from, sizeof from, "%s%s", FROM, child);
        snprintf(to, sizeof to, "%s%s", TO, child);
        struct stat st;
        if (stat(from, &st) != 0)
            fail("cannot stat", from);
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(to, 0755) != 0 && errno != EEXIST)
                fail("cannot make", to);
            copy_tree(child);
        } else if (S_ISREG(st.st_mode)) {
            copy_file(from, to, child + 1);
        }
    }
    if (errno != 0)
        fail("cannot read", FROM);
    closedir(dir);
}

int main(void)
{
    copy_tree("");
    return 0;
}
