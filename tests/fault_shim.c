/*
 * Fault injection for the file store, as an LD_PRELOAD shim (tests only;
 * built by tests/faults.rs with the system C compiler). It wraps the libc
 * calls the store makes and fails one of them, so the shipped module and
 * the shipped command run unchanged: nothing of this is in any build of
 * otpgate.
 *
 *   OTPGATE_FAULT_DIR=/abs/store   only calls on this directory and the
 *                                  files in it are counted and failed
 *   OTPGATE_FAULT=OP:N:ERRNO[:SHORT]
 *       the N-th matching call of OP fails with ERRNO (ENOSPC, EIO, EINTR,
 *       or OK for none); with SHORT, that call instead writes only SHORT
 *       bytes and returns the short count, and the call after it (the
 *       caller's retry for the rest) fails with ERRNO.
 *   OTPGATE_FAULT_REPORT=/abs/file  "OP N" is appended there when it fires
 *
 * OP: open (open/openat, the store directory itself included), flock, read
 * (read/pread), write (write), pwrite (pwrite), fdatasync, fsync (a file),
 * dirsync (fsync of the store directory), rename, unlink.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static char dir[PATH_MAX];
static size_t dir_len;
static char want_op[32];
static long want_nth;
static int want_errno;
static long want_short = -1;
static char report[PATH_MAX];
static int active;
static long counts[16];
static int pending_errno; /* set after a short write: fail the retry */
static char pending_op[32];

static const char *ops[] = {"open",  "flock", "read",   "write", "pwrite", "fdatasync",
                            "fsync", "dirsync", "rename", "unlink", NULL};

static int op_index(const char *op) {
    for (int i = 0; ops[i]; i++)
        if (strcmp(ops[i], op) == 0) return i;
    return -1;
}

__attribute__((constructor)) static void setup(void) {
    const char *d = getenv("OTPGATE_FAULT_DIR");
    const char *f = getenv("OTPGATE_FAULT");
    const char *r = getenv("OTPGATE_FAULT_REPORT");
    if (!d || !f || !*d || !*f) return;
    snprintf(dir, sizeof dir, "%s", d);
    dir_len = strlen(dir);
    while (dir_len > 1 && dir[dir_len - 1] == '/') dir[--dir_len] = 0;
    if (r) snprintf(report, sizeof report, "%s", r);
    char spec[128], err[32] = "";
    snprintf(spec, sizeof spec, "%s", f);
    char *save = NULL, *tok = strtok_r(spec, ":", &save);
    if (!tok) return;
    snprintf(want_op, sizeof want_op, "%s", tok);
    if (op_index(want_op) < 0) return;
    if (!(tok = strtok_r(NULL, ":", &save))) return;
    want_nth = strtol(tok, NULL, 10);
    if (!(tok = strtok_r(NULL, ":", &save))) return;
    snprintf(err, sizeof err, "%s", tok);
    if ((tok = strtok_r(NULL, ":", &save))) want_short = strtol(tok, NULL, 10);
    if (strcmp(err, "ENOSPC") == 0) want_errno = ENOSPC;
    else if (strcmp(err, "EIO") == 0) want_errno = EIO;
    else if (strcmp(err, "EINTR") == 0) want_errno = EINTR;
    else if (strcmp(err, "OK") == 0) want_errno = 0;
    else return;
    active = 1;
}

/* Is `path` the store directory or a file directly in it? */
static int in_store(const char *path) {
    if (strncmp(path, dir, dir_len) != 0) return 0;
    return path[dir_len] == 0 || path[dir_len] == '/';
}

static int fd_path(int fd, char *out, size_t len) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    if (n < 0) return -1;
    out[n] = 0;
    return 0;
}

static int fd_in_store(int fd) {
    char p[PATH_MAX];
    return fd_path(fd, p, sizeof p) == 0 && in_store(p);
}

static int at_in_store(int dirfd, const char *name) {
    if (!name) return 0;
    if (name[0] == '/') return in_store(name);
    char p[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(p, sizeof p)) return 0;
    } else if (fd_path(dirfd, p, sizeof p) != 0) {
        return 0;
    }
    size_t n = strlen(p);
    snprintf(p + n, sizeof p - n, "/%s", name);
    return in_store(p);
}

static void note(const char *op, long nth) {
    if (!report[0]) return;
    int (*real_open)(const char *, int, ...) = dlsym(RTLD_NEXT, "open");
    int fd = real_open(report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    char line[64];
    int len = snprintf(line, sizeof line, "%s %ld\n", op, nth);
    ssize_t (*real_write)(int, const void *, size_t) = dlsym(RTLD_NEXT, "write");
    (void)real_write(fd, line, (size_t)len);
    close(fd);
}

/*
 * Called for each matching call of `op`: 0 to go on; -1 (errno set) to
 * fail it; 1 to make it short (the caller writes want_short bytes).
 */
static int hit(const char *op) {
    if (!active || strcmp(op, want_op) != 0) return 0;
    if (pending_errno && strcmp(op, pending_op) == 0) {
        int e = pending_errno;
        pending_errno = 0;
        note(op, -1);
        errno = e;
        return -1;
    }
    long n = ++counts[op_index(op)];
    if (n != want_nth) return 0;
    note(op, n);
    if (want_short >= 0) {
        if (want_errno) {
            pending_errno = want_errno;
            snprintf(pending_op, sizeof pending_op, "%s", op);
        }
        return 1;
    }
    if (!want_errno) return 0;
    errno = want_errno;
    return -1;
}

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name)                                                                 \
    static __typeof__(&name) real_##name;                                          \
    if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

/* open/open64 (`at` false) and openat/openat64 (`at` true). */
static int open_common(const char *sym, int at, int dirfd, const char *path, int flags, mode_t mode) {
    if (active && at_in_store(at ? dirfd : AT_FDCWD, path) && hit("open") < 0) return -1;
    if (!at) {
        int (*real)(const char *, int, ...) = dlsym(RTLD_NEXT, sym);
        return real(path, flags, mode);
    }
    int (*real)(int, const char *, int, ...) = dlsym(RTLD_NEXT, sym);
    return real(dirfd, path, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap) {
    if (flags & (O_CREAT | O_TMPFILE)) return (mode_t)va_arg(ap, int);
    return 0;
}

int open(const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return open_common("open", 0, 0, path, flags, m);
}
int open64(const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return open_common("open64", 0, 0, path, flags, m);
}
int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return open_common("openat", 1, dirfd, path, flags, m);
}
int openat64(int dirfd, const char *path, int flags, ...) {
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    return open_common("openat64", 1, dirfd, path, flags, m);
}

int flock(int fd, int operation) {
    REAL(flock);
    if (active && !(operation & LOCK_UN) && fd_in_store(fd) && hit("flock") < 0) return -1;
    return real_flock(fd, operation);
}

ssize_t read(int fd, void *buf, size_t count) {
    REAL(read);
    if (active && fd_in_store(fd) && hit("read") < 0) return -1;
    return real_read(fd, buf, count);
}

static ssize_t pread_common(const char *sym, int fd, void *buf, size_t count, off_t off) {
    ssize_t (*real)(int, void *, size_t, off_t) = dlsym(RTLD_NEXT, sym);
    if (active && fd_in_store(fd) && hit("read") < 0) return -1;
    return real(fd, buf, count, off);
}
ssize_t pread(int fd, void *buf, size_t count, off_t off) { return pread_common("pread", fd, buf, count, off); }
ssize_t pread64(int fd, void *buf, size_t count, off_t off) { return pread_common("pread64", fd, buf, count, off); }

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write);
    if (active && fd_in_store(fd)) {
        int h = hit("write");
        if (h < 0) return -1;
        if (h > 0 && (size_t)want_short < count) count = (size_t)want_short;
    }
    return real_write(fd, buf, count);
}

static ssize_t pwrite_common(const char *sym, int fd, const void *buf, size_t count, off_t off) {
    ssize_t (*real)(int, const void *, size_t, off_t) = dlsym(RTLD_NEXT, sym);
    if (active && fd_in_store(fd)) {
        int h = hit("pwrite");
        if (h < 0) return -1;
        if (h > 0 && (size_t)want_short < count) count = (size_t)want_short;
    }
    return real(fd, buf, count, off);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) { return pwrite_common("pwrite", fd, buf, count, off); }
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) { return pwrite_common("pwrite64", fd, buf, count, off); }

int fdatasync(int fd) {
    REAL(fdatasync);
    if (active && fd_in_store(fd) && hit("fdatasync") < 0) return -1;
    return real_fdatasync(fd);
}

int fsync(int fd) {
    REAL(fsync);
    if (active) {
        char p[PATH_MAX];
        if (fd_path(fd, p, sizeof p) == 0 && in_store(p)) {
            const char *op = strcmp(p, dir) == 0 ? "dirsync" : "fsync";
            if (hit(op) < 0) return -1;
        }
    }
    return real_fsync(fd);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    REAL(renameat);
    if (active && at_in_store(newdirfd, newpath) && hit("rename") < 0) return -1;
    return real_renameat(olddirfd, oldpath, newdirfd, newpath);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    REAL(renameat2);
    if (active && at_in_store(newdirfd, newpath) && hit("rename") < 0) return -1;
    return real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

int rename(const char *oldpath, const char *newpath) {
    REAL(rename);
    if (active && at_in_store(AT_FDCWD, newpath) && hit("rename") < 0) return -1;
    return real_rename(oldpath, newpath);
}

int unlinkat(int dirfd, const char *path, int flags) {
    REAL(unlinkat);
    if (active && at_in_store(dirfd, path) && hit("unlink") < 0) return -1;
    return real_unlinkat(dirfd, path, flags);
}

int unlink(const char *path) {
    REAL(unlink);
    if (active && at_in_store(AT_FDCWD, path) && hit("unlink") < 0) return -1;
    return real_unlink(path);
}
