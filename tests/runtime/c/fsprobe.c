/* fsprobe: runs the file operations named by its arguments, one line of output each.
 *
 * Each argument is OP:ARG[:ARG2]. The line is "OP ok[ detail]" or "OP err <errno>", where
 * errno is wasi-libc's value (the wasi_snapshot_preview1 errno). Operations:
 *   read:P            print P's bytes as "ok <n> <bytes>"
 *   stat:P            "ok ino=.. size=.. type=dir|file nlink=.. dev=.. atime=.. mtime=.. ctime=.."
 *   fstat:P           the same through fopen + fstat
 *   ls:P              "ok name,name,..." in readdir order
 *   write:P:TEXT      fopen(P, "w") + fputs + fclose
 *   append:P:TEXT     fopen(P, "a") ...
 *   openw:P           open(P, O_WRONLY) (no create)
 *   fill:P:N          write N bytes of 'x' in 64 KiB chunks; "ok <written>" or "err <errno> <written>"
 *   sparse:P:OFF      fopen(P, "w"), fseek to OFF, write one byte, fflush
 *   truncate:P:N      truncate(P, N)
 *   fallocate:P:N     posix_fallocate(open(P), 0, N)
 *   mkdir:P  rmdir:P  unlink:P  remove:P  chdir:P  rename:P:Q  symlink:P:Q  link:P:Q
 *   readlink:P        readlink(P)
 *   cwdread:P         read a relative path (after chdir)
 *   manyfiles:DIR:N   create DIR/f0..f(N-1) (empty); "ok <made>" or "err <errno> <made>"
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char chunk[65536];
static char got[65536];

static void fail(const char *op) { printf("%s err %d\n", op, errno); }

static void print_stat(const char *op, const struct stat *st)
{
    printf("%s ok ino=%llu size=%lld type=%s nlink=%llu dev=%llu atime=%lld mtime=%lld ctime=%lld\n",
           op, (unsigned long long)st->st_ino, (long long)st->st_size,
           S_ISDIR(st->st_mode) ? "dir" : S_ISREG(st->st_mode) ? "file" : "other",
           (unsigned long long)st->st_nlink, (unsigned long long)st->st_dev,
           (long long)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec,
           (long long)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
           (long long)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec);
}

static void do_read(const char *op, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fail(op); return; }
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    printf("%s ok %zu ", op, n);
    fwrite(got, 1, n, stdout);
    printf("\n");
}

static void do_write(const char *op, const char *path, const char *mode, const char *text)
{
    FILE *f = fopen(path, mode);
    if (!f) { fail(op); return; }
    if (fputs(text, f) < 0 || fclose(f) != 0) { fail(op); return; }
    printf("%s ok\n", op);
}

int main(int argc, char **argv)
{
    memset(chunk, 'x', sizeof chunk);
    for (int i = 1; i < argc; i++) {
        char *op = strdup(argv[i]);
        char *arg = strchr(op, ':');
        char *arg2 = NULL;
        if (arg) { *arg++ = '\0'; arg2 = strchr(arg, ':'); if (arg2) *arg2++ = '\0'; }
        errno = 0;
        if (!strcmp(op, "read") || !strcmp(op, "cwdread")) {
            do_read(op, arg);
        } else if (!strcmp(op, "stat")) {
            struct stat st;
            if (stat(arg, &st)) fail(op); else print_stat(op, &st);
        } else if (!strcmp(op, "fstat")) {
            struct stat st;
            FILE *f = fopen(arg, "r");
            if (!f || fstat(fileno(f), &st)) fail(op); else print_stat(op, &st);
            if (f) fclose(f);
        } else if (!strcmp(op, "ls")) {
            DIR *d = opendir(arg);
            if (!d) { fail(op); continue; }
            printf("%s ok", op);
            const char *sep = " ";
            for (struct dirent *e; (e = readdir(d)); sep = ",") printf("%s%s", sep, e->d_name);
            printf("\n");
            closedir(d);
        } else if (!strcmp(op, "write")) {
            do_write(op, arg, "w", arg2 ? arg2 : "");
        } else if (!strcmp(op, "append")) {
            do_write(op, arg, "a", arg2 ? arg2 : "");
        } else if (!strcmp(op, "openw")) {
            int fd = open(arg, O_WRONLY);
            if (fd < 0) fail(op); else { printf("%s ok\n", op); close(fd); }
        } else if (!strcmp(op, "fill")) {
            long long want = atoll(arg2), done = 0;
            int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) { fail(op); continue; }
            while (done < want) {
                size_t n = want - done < (long long)sizeof chunk ? (size_t)(want - done) : sizeof chunk;
                ssize_t w = write(fd, chunk, n);
                if (w < 0) break;
                done += w;
            }
            if (done < want) printf("%s err %d %lld\n", op, errno, done);
            else printf("%s ok %lld\n", op, done);
            close(fd);
        } else if (!strcmp(op, "sparse")) {
            int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) { fail(op); continue; }
            if (lseek(fd, atoll(arg2), SEEK_SET) < 0) { fail(op); close(fd); continue; }
            if (write(fd, "y", 1) != 1) fail(op); else printf("%s ok\n", op);
            close(fd);
        } else if (!strcmp(op, "truncate")) {
            if (truncate(arg, atoll(arg2))) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "fallocate")) {
            int fd = open(arg, O_WRONLY | O_CREAT, 0644);
            if (fd < 0) { fail(op); continue; }
            int e = posix_fallocate(fd, 0, atoll(arg2));
            if (e) printf("%s err %d\n", op, e); else printf("%s ok\n", op);
            close(fd);
        } else if (!strcmp(op, "mkdir")) {
            if (mkdir(arg, 0755)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "rmdir")) {
            if (rmdir(arg)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "unlink")) {
            if (unlink(arg)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "remove")) {
            if (remove(arg)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "chdir")) {
            if (chdir(arg)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "rename")) {
            if (rename(arg, arg2)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "symlink")) {
            if (symlink(arg, arg2)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "link")) {
            if (link(arg, arg2)) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "readlink")) {
            char buf[64];
            if (readlink(arg, buf, sizeof buf) < 0) fail(op); else printf("%s ok\n", op);
        } else if (!strcmp(op, "manyfiles")) {
            int want = atoi(arg2), made = 0;
            char path[512];
            for (; made < want; made++) {
                snprintf(path, sizeof path, "%s/f%d", arg, made);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0) break;
                close(fd);
            }
            if (made < want) printf("%s err %d %d\n", op, errno, made);
            else printf("%s ok %d\n", op, made);
        } else {
            printf("%s unknown\n", op);
        }
        free(op);
    }
    return 0;
}
