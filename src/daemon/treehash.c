/* treehash.c - tree hash, sanitizing and change watches of a template tree.
 *
 * One walker visits every entry in the order the hash defines (depth first,
 * names sorted with strcmp, so the order does not depend on the locale or
 * the filesystem's directory order); three visitors use it. Nothing here
 * follows a symbolic link: every lookup is relative to an opened directory
 * with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW, so a link inside the tree can never
 * send the daemon (root) outside of it.
 */
#include "treehash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util.h"

#define CAP_XATTR "security.capability"

struct walk {
    /* dirfd: the entry's parent; rel: path from the root ("" for the root) */
    int (*visit)(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *st);
    char *err;
    size_t errlen;
    void *ctx;
};

static int walk_fail(struct walk *w, int r, const char *op, const char *rel)
{
    snprintf(w->err, w->errlen, "%s %s: %s", op, rel[0] ? rel : ".", strerror(-r));
    return r;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Sorted entry names of the open directory fd (consumed). */
static int read_names(int fd, char ***out, size_t *count)
{
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int r = -errno;
        close(fd);
        return r;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, cap * sizeof(*names));
            if (!grown)
                goto nomem;
            names = grown;
        }
        if (!(names[n] = strdup(de->d_name)))
            goto nomem;
        n++;
    }
    if (errno) {
        int r = -errno;
        free_names(names, n);
        closedir(dir);
        return r;
    }
    closedir(dir);
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    *out = names;
    *count = n;
    return 0;
nomem:
    free_names(names, n);
    closedir(dir);
    return -ENOMEM;
}

static int walk_dir(struct walk *w, int dirfd, const char *rel, int depth)
{
    if (depth > 256)
        return walk_fail(w, -ELOOP, "walk", rel);
    /* a fresh open file description: read_names consumes its fd and moves
     * its offset, while the entries are still looked up relative to dirfd */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return walk_fail(w, -errno, "open", rel);
    char **names = NULL;
    size_t n = 0;
    int r = read_names(fd, &names, &n);
    if (r < 0)
        return walk_fail(w, r, "read directory", rel);
    for (size_t i = 0; r == 0 && i < n; i++) {
        char child[PATH_MAX];
        if (snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", names[i]) >= (int)sizeof(child)) {
            r = walk_fail(w, -ENAMETOOLONG, "walk", rel);
            break;
        }
        struct stat st;
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            r = walk_fail(w, -errno, "stat", child);
            break;
        }
        if ((r = w->visit(w, dirfd, names[i], child, &st)) < 0)
            break;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                r = walk_fail(w, -errno, "open", child);
                break;
            }
            r = walk_dir(w, sub, child, depth + 1);
            close(sub);
        }
    }
    free_names(names, n);
    return r;
}

static int walk_tree(struct walk *w, const char *root)
{
    cleanup_fd int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(w->err, w->errlen, "open %s: %s", root, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(w->err, w->errlen, "stat %s: %s", root, strerror(errno));
        return -errno;
    }
    int r = w->visit(w, fd, ".", "", &st);
    return r < 0 ? r : walk_dir(w, fd, "", 0);
}

/* ---- the hash */

struct hash_ctx {
    EVP_MD_CTX *md;
    struct tree_stats stats;
    unsigned char *buf;
};

static void field(EVP_MD_CTX *md, const char *s) { EVP_DigestUpdate(md, s, strlen(s) + 1); }

static void fieldf(EVP_MD_CTX *md, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fieldf(EVP_MD_CTX *md, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    field(md, tmp);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int hash_content(struct walk *w, int dirfd, const char *name, const char *rel, char out[65])
{
    struct hash_ctx *h = w->ctx;
    cleanup_fd int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return walk_fail(w, -errno, "open", rel);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return walk_fail(w, -ENOMEM, "sha256", rel);
    }
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, h->buf, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = walk_fail(w, -errno, "read", rel);
            break;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(md, h->buf, (size_t)n);
    }
    unsigned char d[32];
    if (r == 0)
        EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    if (r == 0)
        hex(d, 32, out);
    return r;
}

static int visit_hash(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *st)
{
    struct hash_ctx *h = w->ctx;
    EVP_MD_CTX *md = h->md;
    unsigned perm = st->st_mode & 07777;
    if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
        if (n < 0)
            return walk_fail(w, -errno, "readlink", rel);
        target[n] = '\0';
        field(md, "l");
        fieldf(md, "%u", (unsigned)st->st_uid);
        fieldf(md, "%u", (unsigned)st->st_gid);
        field(md, rel);
        field(md, target);
        h->stats.links++;
        return 0;
    }
    const char *type = S_ISDIR(st->st_mode)    ? "d"
                       : S_ISREG(st->st_mode)  ? "f"
                       : S_ISCHR(st->st_mode)  ? "c"
                       : S_ISBLK(st->st_mode)  ? "b"
                       : S_ISFIFO(st->st_mode) ? "p"
                                               : "s";
    field(md, type);
    fieldf(md, "%o", perm);
    fieldf(md, "%u", (unsigned)st->st_uid);
    fieldf(md, "%u", (unsigned)st->st_gid);
    if (S_ISREG(st->st_mode)) {
        char sum[65];
        int r = hash_content(w, dirfd, name, rel, sum);
        if (r < 0)
            return r;
        fieldf(md, "%llu", (unsigned long long)st->st_size);
        field(md, sum);
        h->stats.files++;
        h->stats.bytes += (uint64_t)st->st_size;
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        fieldf(md, "%u", major(st->st_rdev));
        fieldf(md, "%u", minor(st->st_rdev));
        h->stats.others++;
    } else if (S_ISDIR(st->st_mode)) {
        h->stats.dirs++;
    } else {
        h->stats.others++;
    }
    field(md, rel);
    if (S_ISREG(st->st_mode)) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
        if (lgetxattr(path, CAP_XATTR, NULL, 0) > 0)
            field(md, "cap");
    }
    return 0;
}

int tree_hash(const char *root, char *out, struct tree_stats *stats, char *err, size_t errlen)
{
    struct hash_ctx h = {.md = EVP_MD_CTX_new(), .buf = malloc(1 << 16)};
    int r;
    if (!h.md || !h.buf || EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "sha256: out of memory");
        r = -ENOMEM;
        goto out;
    }
    struct walk w = {.visit = visit_hash, .err = err, .errlen = errlen, .ctx = &h};
    if ((r = walk_tree(&w, root)) < 0)
        goto out;
    unsigned char d[32];
    EVP_DigestFinal_ex(h.md, d, NULL);
    memcpy(out, "sha256:", 7);
    hex(d, 32, out + 7);
    if (stats)
        *stats = h.stats;
out:
    EVP_MD_CTX_free(h.md);
    free(h.buf);
    return r;
}

/* ---- sanitizing */

static int visit_sanitize(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *st)
{
    unsigned *changed = w->ctx;
    if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
        return 0;
    /* setgid on a directory only makes new files inherit its group: harmless
     * on a read-only tree, and Debian ships some (/var/mail, /var/local) */
    if (S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID))) {
        if (fchmodat(dirfd, name, st->st_mode & 01777 & ~(mode_t)S_ISGID, 0) < 0)
            return walk_fail(w, -errno, "chmod", rel);
        (*changed)++;
    }
    if (S_ISREG(st->st_mode)) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
        if (lremovexattr(path, CAP_XATTR) == 0)
            (*changed)++;
        else if (errno != ENODATA && errno != ENOTSUP)
            return walk_fail(w, -errno, "remove file capabilities of", rel);
    }
    return 0;
}

int tree_sanitize(const char *root, char *err, size_t errlen)
{
    unsigned changed = 0;
    struct walk w = {.visit = visit_sanitize, .err = err, .errlen = errlen, .ctx = &changed};
    int r = walk_tree(&w, root);
    return r < 0 ? r : (int)changed;
}

/* ---- change watches */

struct watch_ctx {
    int ifd;
    int count;
};

static int visit_watch(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *st)
{
    struct watch_ctx *c = w->ctx;
    if (!S_ISDIR(st->st_mode))
        return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
    /* everything that changes what the hash covers; not IN_ACCESS/IN_OPEN
     * (the hash itself reads every file) */
    uint32_t mask = IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                    IN_MOVE_SELF | IN_CLOSE_WRITE | IN_DONT_FOLLOW | IN_ONLYDIR;
    if (inotify_add_watch(c->ifd, path, mask) < 0)
        return walk_fail(w, -errno, "inotify_add_watch", rel);
    c->count++;
    return 0;
}

int tree_watch(const char *root, int ifd, char *err, size_t errlen)
{
    struct watch_ctx c = {.ifd = ifd};
    struct walk w = {.visit = visit_watch, .err = err, .errlen = errlen, .ctx = &c};
    int r = walk_tree(&w, root);
    return r < 0 ? r : c.count;
}
