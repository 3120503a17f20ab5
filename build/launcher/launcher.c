/*
 * hc's launcher: the first part of the single-file `hc` binary.
 *
 * The file is this static program followed by a bundle (build/launcher/pack.py writes it): the
 * PyInstaller onedir build of hc with the glibc it needs, an index of its files, and a trailer.
 * A run of `hc ...`:
 *   1. blocks SIGTERM and SIGINT: a signal sent while hc starts stays pending across exec until
 *      hc's Python code has installed its handlers and unblocks them (hc/__main__.py), so
 *      `docker stop` at any moment ends in a clean exit 0;
 *   2. looks for the bundle's cache dir, $TMPDIR/hc-<euid>-<bundle id> (TMPDIR defaults to /tmp),
 *      and uses it when it is ours (a real directory, owned by us, mode 0700) and every file in
 *      it has the size the index gives;
 *   3. otherwise unpacks the bundle into a fresh private dir and renames it into place: the
 *      first of several processes racing here wins, the others use its copy;
 *   4. execs the bootloader in the cache dir. Its ELF interpreter is written at unpacking time
 *      to be the bundled loader, and its RUNPATH is $ORIGIN/_internal, so nothing of the host's
 *      C library is used.
 * It never forks, so no process of it stays behind, and a run that finds the cache writes
 * nothing: the cost of one `hc healthcheck` is that of the onedir build plus a few syscalls.
 *
 * Errors are one line on stderr, "hc: ...", and exit status 1 (for `hc healthcheck`: unhealthy).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define TRAILER_SIZE 64
#define TRAILER_MAGIC "hcbundle"
#define BUNDLE_FORMAT 1u
#define ID_LEN 32
#define MAX_INDEX (1u << 20)
#define FAILURE 1

struct entry {
    char kind;            /* 'd' directory, 'f' regular file */
    unsigned mode;        /* permission bits from the build; the cache keeps only the owner's */
    uint64_t size;        /* file size */
    uint64_t offset;      /* where the file's bytes start in the binary */
    const char *path;     /* relative, validated: no "..", no leading "/" */
};

struct bundle {
    int fd;                       /* the binary itself */
    char id[ID_LEN + 1];          /* content hash: a new build never reuses an old cache */
    const char *program;          /* the bootloader, relative to the cache dir */
    const char *loader;           /* the dynamic loader, likewise */
    uint64_t interp_offset;       /* PT_INTERP of the program: where the loader path goes */
    uint64_t interp_capacity;     /* its size, terminating NUL included */
    struct entry *entries;
    size_t count;
    uint64_t payload_start, payload_end;
};

static void remove_tree(const char *path);

/* A dir being unpacked: removed if we die before it is complete (a full disk, an I/O error),
 * so that failed runs do not pile up partial copies. */
static char unfinished[PATH_MAX];

static void die(const char *format, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *format, ...)
{
    char line[PATH_MAX + 256];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    dprintf(STDERR_FILENO, "hc: %s\n", line);
    if (unfinished[0])
        remove_tree(unfinished);
    exit(FAILURE);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = value << 8 | p[i];
    return value;
}

static void read_exact(int fd, void *buffer, size_t size, uint64_t offset, const char *what)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (char *)buffer + done, size - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("cannot read the %s of this binary: %s", what, n < 0 ? strerror(errno) : "truncated");
        done += (size_t)n;
    }
}

/* A path from the index: relative, no empty, "." or ".." component, printable, no spaces. */
static int safe_path(const char *path)
{
    if (!*path || *path == '/')
        return 0;
    for (const char *part = path; *part;) {
        size_t len = strcspn(part, "/");
        if (len == 0 || (len == 1 && part[0] == '.') || (len == 2 && part[0] == '.' && part[1] == '.'))
            return 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)part[i] <= ' ' || part[i] == 0x7f)
                return 0;
        part += len;
        if (*part == '/')
            part++;
    }
    return 1;
}

static void corrupt(const char *why) __attribute__((noreturn));
static void corrupt(const char *why)
{
    die("this binary's bundle is damaged (%s); download or build it again", why);
}

/* Parse the text index: a header, then one line per directory and file. */
static void parse_index(struct bundle *b, char *text)
{
    size_t lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    b->entries = calloc(lines ? lines : 1, sizeof *b->entries);
    if (!b->entries)
        die("out of memory");

    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    unsigned format = 0;
    if (!line || sscanf(line, "hc-bundle %u", &format) != 1 || format != BUNDLE_FORMAT)
        corrupt("unknown index format");
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *rest = NULL;
        if (strncmp(line, "program ", 8) == 0) {
            b->program = line + 8;
        } else if (strncmp(line, "loader ", 7) == 0) {
            b->loader = line + 7;
        } else if (strncmp(line, "interp ", 7) == 0) {
            b->interp_offset = strtoull(line + 7, &rest, 10);
            b->interp_capacity = strtoull(rest, &rest, 10);
            if (*rest)
                corrupt("bad interp line");
        } else if (line[0] == 'd' && line[1] == ' ') {
            b->entries[b->count++] = (struct entry){.kind = 'd', .mode = 0700, .path = line + 2};
        } else if (line[0] == 'f' && line[1] == ' ') {
            struct entry *e = &b->entries[b->count++];
            e->kind = 'f';
            e->mode = (unsigned)strtoul(line + 2, &rest, 8);
            e->size = strtoull(rest, &rest, 10);
            e->offset = strtoull(rest, &rest, 10);
            if (*rest != ' ')
                corrupt("bad file line");
            e->path = rest + 1;
            if (e->offset < b->payload_start || e->offset > b->payload_end
                    || e->size > b->payload_end - e->offset)
                corrupt("file outside the payload");
        } else {
            corrupt("unknown index line");
        }
    }
    if (!b->program || !b->loader || !b->interp_capacity)
        corrupt("index without program, loader or interp");
    if (!safe_path(b->program) || !safe_path(b->loader))
        corrupt("unsafe program or loader path");
    const struct entry *program = NULL;
    for (size_t i = 0; i < b->count; i++) {
        if (!safe_path(b->entries[i].path))
            corrupt("unsafe path");
        if (b->entries[i].kind == 'f' && strcmp(b->entries[i].path, b->program) == 0)
            program = &b->entries[i];
    }
    /* The loader path is written into the program's PT_INTERP: it must lie within the file. */
    if (!program || b->interp_offset > program->size
            || b->interp_capacity > program->size - b->interp_offset)
        corrupt("interp outside the program");
}

static void open_bundle(struct bundle *b, const char *argv0)
{
    b->fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (b->fd < 0 && strchr(argv0, '/'))  /* no /proc: the path we were started by */
        b->fd = open(argv0, O_RDONLY | O_CLOEXEC);
    if (b->fd < 0)
        die("cannot open this binary to read its bundle: %s", strerror(errno));
    struct stat self;
    if (fstat(b->fd, &self) < 0 || self.st_size < TRAILER_SIZE)
        corrupt("no trailer");

    unsigned char trailer[TRAILER_SIZE];
    uint64_t size = (uint64_t)self.st_size;
    read_exact(b->fd, trailer, sizeof trailer, size - TRAILER_SIZE, "trailer");
    /* Layout: index offset (8), index size (8), payload start (8), id (32), magic (8). */
    if (memcmp(trailer + 56, TRAILER_MAGIC, 8) != 0)
        corrupt("no trailer");
    uint64_t index_offset = le64(trailer), index_size = le64(trailer + 8);
    b->payload_start = le64(trailer + 16);
    b->payload_end = index_offset;
    memcpy(b->id, trailer + 24, ID_LEN);
    b->id[ID_LEN] = 0;
    if (strspn(b->id, "0123456789abcdef") != ID_LEN)
        corrupt("bad bundle id");
    if (index_size == 0 || index_size > MAX_INDEX || b->payload_start > index_offset
            || index_offset > size - TRAILER_SIZE || index_size > size - TRAILER_SIZE - index_offset)
        corrupt("bad index bounds");

    char *text = malloc(index_size + 1);
    if (!text)
        die("out of memory");
    read_exact(b->fd, text, index_size, index_offset, "index");
    text[index_size] = 0;
    if (strlen(text) != index_size)
        corrupt("NUL in index");
    parse_index(b, text);
}

/* $TMPDIR (absolute) or /tmp, refused when others could swap our dir under us. */
static const char *temp_root(void)
{
    const char *root = getenv("TMPDIR");
    if (!root || root[0] != '/')
        root = "/tmp";
    struct stat info;
    if (stat(root, &info) < 0)
        die("temp dir %s: %s (set TMPDIR to a writable directory)", root, strerror(errno));
    if (!S_ISDIR(info.st_mode))
        die("temp dir %s is not a directory (set TMPDIR)", root);
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) && !(info.st_mode & S_ISVTX))
        die("temp dir %s is writable by others without the sticky bit; refusing to run code "
            "from it (set TMPDIR)", root);
    return root;
}

enum cache_state { CACHE_MISSING, CACHE_READY, CACHE_BROKEN };

/* Is `dir` our complete unpacked bundle? A dir of another user is a hard error: it may have
 * been planted, and we must neither run from it nor remove it. `*inode` is the dir's. */
static enum cache_state check_cache(const struct bundle *b, const char *dir, ino_t *inode)
{
    struct stat info;
    if (lstat(dir, &info) < 0) {
        if (errno == ENOENT)
            return CACHE_MISSING;
        die("cache dir %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(info.st_mode) || info.st_uid != geteuid() || (info.st_mode & 077))
        die("cache dir %s is not a private directory of uid %u; remove it or set TMPDIR",
            dir, (unsigned)geteuid());
    *inode = info.st_ino;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0)
        die("cache dir %s: %s", dir, strerror(errno));
    enum cache_state state = CACHE_READY;
    for (size_t i = 0; i < b->count && state == CACHE_READY; i++) {
        const struct entry *e = &b->entries[i];
        if (fstatat(dirfd, e->path, &info, AT_SYMLINK_NOFOLLOW) < 0
                || (e->kind == 'd' && !S_ISDIR(info.st_mode))
                || (e->kind == 'f' && (!S_ISREG(info.st_mode) || (uint64_t)info.st_size != e->size)))
            state = CACHE_BROKEN;
    }
    close(dirfd);
    return state;
}

static void copy_range(int from, uint64_t offset, uint64_t size, int to, const char *path)
{
    off_t at = (off_t)offset;
    while (size > 0) {
        size_t chunk = size > (1u << 30) ? (1u << 30) : (size_t)size;
        ssize_t n = sendfile(to, from, &at, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("cannot write %s: %s", path, n < 0 ? strerror(errno) : "short copy");
        size -= (uint64_t)n;
    }
}

/* The bundled loader's path in the final cache dir, checked against the room the bootloader's
 * ELF interpreter has for it: before anything is unpacked, so a refusal leaves nothing behind. */
static void loader_path(const struct bundle *b, const char *final_dir, char *out)
{
    int len = snprintf(out, PATH_MAX, "%s/%s", final_dir, b->loader);
    if (len < 0 || len >= PATH_MAX || (uint64_t)len + 1 > b->interp_capacity)
        die("the loader path %s/%s is too long (%d bytes, at most %llu): set TMPDIR to a "
            "shorter directory", final_dir, b->loader, len,
            (unsigned long long)b->interp_capacity - 1);
}

static void write_loader_path(const struct bundle *b, int fd, const char *interp)
{
    size_t size = strlen(interp) + 1;
    if (pwrite(fd, interp, size, (off_t)b->interp_offset) != (ssize_t)size)
        die("cannot write the loader path into %s: %s", b->program, strerror(errno));
}

/* Unpack every entry below `dirfd` (`where` names it in messages). */
static void unpack(const struct bundle *b, int dirfd, const char *where, const char *interp)
{
    for (size_t i = 0; i < b->count; i++) {
        const struct entry *e = &b->entries[i];
        if (e->kind == 'd') {
            if (mkdirat(dirfd, e->path, 0700) < 0 && errno != EEXIST)
                die("cannot create %s/%s: %s", where, e->path, strerror(errno));
            continue;
        }
        int fd = openat(dirfd, e->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            die("cannot create %s/%s: %s", where, e->path, strerror(errno));
        copy_range(b->fd, e->offset, e->size, fd, e->path);
        if (strcmp(e->path, b->program) == 0)
            write_loader_path(b, fd, interp);
        /* Only the owner's bits: the dir is private anyway; fchmod is not bound by the umask. */
        if (fchmod(fd, e->mode & 0700) < 0 || close(fd) < 0)
            die("cannot finish %s/%s: %s", where, e->path, strerror(errno));
    }
    /* The bundle's bytes were read once; let the page cache drop them (it counts against a
     * container's memory limit) and keep what runs. */
    posix_fadvise(b->fd, (off_t)b->payload_start, (off_t)(b->payload_end - b->payload_start),
                  POSIX_FADV_DONTNEED);
}

static int remove_entry(const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void)info, (void)type, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Make `final_dir` a complete cache, whoever wins the race to create it. */
static void install(const struct bundle *b, const char *root, const char *final_dir,
                    const char *interp)
{
    char work[PATH_MAX];
    if (snprintf(work, sizeof work, "%s/.hc-%u-%s-XXXXXX", root, (unsigned)geteuid(), b->id)
            >= (int)sizeof work)
        die("temp dir path too long");
    if (!mkdtemp(work))
        die("cannot create a dir in %s: %s (set TMPDIR to a writable directory)", root,
            strerror(errno));
    memcpy(unfinished, work, sizeof work);
    int dirfd = open(work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0)
        die("cannot open %s: %s", work, strerror(errno));
    unpack(b, dirfd, work, interp);
    close(dirfd);
    unfinished[0] = '\0';
    if (rename(work, final_dir) < 0) {
        int error = errno;
        remove_tree(work);
        if (error != EEXIST && error != ENOTEMPTY)
            die("cannot rename %s to %s: %s", work, final_dir, strerror(error));
        /* Another process got there first: its copy is as good as ours. */
    }
}

/* Move the damaged cache of ours (the dir `broken` is the inode of) aside and delete it. When
 * another process has replaced it with a complete one meanwhile, that one is put back. */
static void discard(const struct bundle *b, const char *root, const char *dir, ino_t broken)
{
    char aside[PATH_MAX];
    if (snprintf(aside, sizeof aside, "%s/.hc-%u-%s-old-XXXXXX", root, (unsigned)geteuid(), b->id)
            >= (int)sizeof aside || !mkdtemp(aside))
        die("cannot create a dir in %s: %s", root, strerror(errno));
    if (rename(dir, aside) < 0) {
        if (errno != ENOENT)  /* ENOENT: another process moved it */
            die("cannot move the damaged cache %s aside: %s", dir, strerror(errno));
        rmdir(aside);
        return;
    }
    struct stat moved;
    if (lstat(aside, &moved) == 0 && moved.st_ino != broken && rename(aside, dir) == 0)
        return;  /* not the dir found damaged: another process's fresh copy, back in place */
    remove_tree(aside);
}

int main(int argc, char **argv)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    (void)argc;

    struct bundle b = {0};
    open_bundle(&b, argv[0]);
    const char *root = temp_root();
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/hc-%u-%s", root, (unsigned)geteuid(), b.id) >= (int)sizeof dir)
        die("temp dir path too long: %s", root);

    char interp[PATH_MAX];
    loader_path(&b, dir, interp);

    ino_t inode = 0;
    enum cache_state state = check_cache(&b, dir, &inode);
    for (int attempt = 0; state != CACHE_READY && attempt < 3; attempt++) {
        if (state == CACHE_BROKEN)
            discard(&b, root, dir, inode);
        install(&b, root, dir, interp);
        state = check_cache(&b, dir, &inode);
    }
    if (state != CACHE_READY)
        die("cache dir %s keeps changing under us; is another program removing files in %s?",
            dir, root);

    char program[PATH_MAX];
    if (snprintf(program, sizeof program, "%s/%s", dir, b.program) >= (int)sizeof program)
        die("temp dir path too long: %s", root);
    /* The bundle's libraries first: a host's LD_LIBRARY_PATH must not supply the C library. */
    const char *paths = getenv("LD_LIBRARY_PATH");
    if (paths && *paths) {
        char joined[PATH_MAX * 2];
        const char *slash = strrchr(b.loader, '/');
        int libdir = slash ? (int)(slash - b.loader) : 0;
        snprintf(joined, sizeof joined, "%s/%.*s:%s", dir, libdir, b.loader, paths);
        setenv("LD_LIBRARY_PATH", joined, 1);
    }
    close(b.fd);
    execv(program, argv);
    die("cannot run %s: %s%s", program, strerror(errno),
        errno == EACCES ? " (is the temp dir mounted noexec? set TMPDIR or mount it exec)" : "");
}
