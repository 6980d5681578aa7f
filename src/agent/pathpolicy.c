/* pathpolicy.c - which paths the file API (FILE_PUT / GET / LIST / DELETE /
 * MKDIR / STAT / RENAME, files.c) accepts, and how it opens them. Everything that decides
 * whether a daemon-supplied path may be read or written is in this file.
 *
 * Every path from the daemon is untrusted (the daemon checks the same
 * things first: this is defence in depth). It is
 *   1. checked (no NUL, valid UTF-8, not empty, at most 4096 bytes),
 *   2. made absolute (relative paths start at /home/user) and normalised
 *      lexically ("//", ".", ".." collapse; ".." stops at "/"): 1 and 2 are
 *      src/common/path.c, shared with the daemon,
 *   3. refused if under /proc, /sys or /dev (kernel interfaces, not files:
 *      listing /proc/1/fd would show the agent's descriptors), and for
 *      writes, required to lie under /tmp, /data or /home/user (the
 *      sandbox's scratch directories, one tmpfs in memory),
 *   4. opened with openat2(root_fd, path, RESOLVE_IN_ROOT |
 *      RESOLVE_NO_MAGICLINKS): ".." and absolute symlinks resolve inside the
 *      root, and /proc/self/root-style magic links are refused,
 *   5. for writes, the directory actually reached is read back through
 *      /proc/self/fd and must still be under an allowed prefix (a symlink
 *      /home/user/x -> /etc lands in the sandbox's own /etc: not writable);
 *      directories created on the way (mkdir -p) are checked the same way,
 *      one component at a time, are 0755 and owned by the user (1000),
 *   6. and the last component is handled by the caller with *at() calls on
 *      that directory fd, never following a symlink at the leaf (files.c:
 *      O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, renameat of a temporary file).
 * Reads (GET, LIST, STAT) check step 5's way too that the file or directory
 * reached is not under /proc, /sys or /dev (a symlink /tmp/p -> /proc),
 * by the filesystem type first (procfs, sysfs, devpts) and by the path
 * read back; STAT describes the leaf itself (a symlink is not followed), so
 * that check is of the directory holding it, and LIST with a depth walks
 * into no directory that is a kernel interface (pathpolicy_may_walk). A
 * RENAME is a write at both ends: each is opened as a write's parent. The
 * writable prefixes themselves can be neither deleted nor
 * replaced by a file (pathpolicy_is_writable_root).
 *
 * The kernel adds two walls behind these: the agent's Landlock domain
 * (landlock.c: writes only beneath the scratch directories, /dev/shm and
 * device files) and the read-only mounts of the sandbox root (jail mnt.c).
 *
 * Refusals are sent here (ERROR on the request) so that each decision and
 * its message sit together; the openers return the fd or -1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "agent.h"
#include "path.h"
#include "pathpolicy.h"
#include "util.h"

static const char *const writable_roots[] = {"/tmp", "/data", "/home/user"};
#define WRITES_ONLY_MSG "writes are allowed only under /tmp, /data and /home/user"

/* ---- the checks ---------------------------------------------------------------- */

/* Steps 1-2 (src/common/path.c). out must hold PATHPOLICY_NORM_MAX bytes.
 * 0 or -EINVAL with msg set. */
static int path_normalize_json(json_t *jpath, char *out, const char **msg)
{
    const char *in = json_string_value(jpath);
    if (!in) {
        *msg = "path must be a string";
        return -EINVAL;
    }
    return path_normalize(in, json_string_length(jpath), out, msg);
}

#define KERNEL_PATH_MSG "paths under /proc, /sys and /dev are not files; the file API refuses them"

static bool under_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool path_writable(const char *norm)
{
    for (size_t i = 0; i < ARRAY_SIZE(writable_roots); i++)
        if (under_prefix(norm, writable_roots[i]))
            return true;
    return false;
}

bool pathpolicy_is_writable_root(const char *norm)
{
    for (size_t i = 0; i < ARRAY_SIZE(writable_roots); i++)
        if (strcmp(norm, writable_roots[i]) == 0)
            return true;
    return false;
}

/* "/a/b/c" -> parent "/a/b", leaf "c"; "/a" -> "/", "a". */
static void path_split(const char *norm, char *parent, const char **leaf)
{
    const char *slash = strrchr(norm, '/');
    size_t plen = (size_t)(slash - norm);
    if (plen == 0)
        plen = 1;
    memcpy(parent, norm, plen);
    parent[plen] = '\0';
    *leaf = slash + 1;
}

/* Step 4: every daemon-supplied path is resolved here; callers work only on
 * a leaf name relative to a directory fd this returned. */
static int open_in_root(struct agent *a, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, a->root_fd, path, &how, sizeof(how));
    return fd < 0 ? -errno : fd;
}

/* Where did fd really end up, as a path inside the root? 0 with *inside
 * pointing into real (PATH_MAX bytes), -EACCES if outside the root, 1 if
 * /proc is unavailable (then only the lexical checks stand). */
static int fd_path_in_root(struct agent *a, int fd, char *real, const char **inside)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, PATH_MAX - 1);
    if (n < 0)
        return 1;
    real[n] = '\0';
    *inside = real;
    size_t rlen = strlen(a->root_real);
    if (strcmp(a->root_real, "/") != 0) {
        if (strncmp(real, a->root_real, rlen) != 0 || (real[rlen] != '/' && real[rlen] != '\0'))
            return -EACCES;
        *inside = real[rlen] ? real + rlen : "/";
    }
    return 0;
}

/* Step 5: -EACCES if dirfd is outside the writable prefixes. */
static int check_dir_writable(struct agent *a, int dirfd)
{
    char real[PATH_MAX];
    const char *inside;
    int r = fd_path_in_root(a, dirfd, real, &inside);
    if (r != 0)
        return r < 0 ? r : 0;
    return path_writable(inside) ? 0 : -EACCES;
}

/* The read side of step 5: is what fd reached a kernel interface (a
 * symlink into /proc, /sys or /dev)? The filesystem type says so even when
 * the path cannot be read back. */
static bool fd_is_kernel(struct agent *a, int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) == 0 && (sf.f_type == 0x9fa0 /* PROC_SUPER_MAGIC */ || sf.f_type == 0x62656572 /* SYSFS */ ||
                                  sf.f_type == 0x1cd1 /* DEVPTS */))
        return true;
    char real[PATH_MAX];
    const char *inside;
    int r = fd_path_in_root(a, fd, real, &inside);
    return r == 0 && path_is_kernel(inside);
}

/* mkdir -p for every component of norm (all of it if include_leaf, else up
 * to its parent). New directories are 0755 and owned by the user. */
static int ensure_dirs(struct agent *a, const char *norm, bool include_leaf, char *failed_at)
{
    char prefix[PATHPOLICY_NORM_MAX];
    size_t len = strlen(norm);
    size_t end = len;
    if (!include_leaf)
        end = (size_t)(strrchr(norm, '/') - norm);
    for (size_t i = 1; i <= end; i++) {
        if (i != end && norm[i] != '/')
            continue;
        memcpy(prefix, norm, i);
        prefix[i] = '\0';
        strcpy(failed_at, prefix);
        int fd = open_in_root(a, prefix, O_PATH | O_DIRECTORY);
        if (fd >= 0) {
            close(fd);
            continue;
        }
        if (fd != -ENOENT)
            return fd;
        char parent[PATHPOLICY_NORM_MAX];
        const char *leaf;
        path_split(prefix, parent, &leaf);
        cleanup_fd int pfd = open_in_root(a, parent, O_PATH | O_DIRECTORY);
        if (pfd < 0)
            return pfd;
        int r = check_dir_writable(a, pfd);
        if (r < 0)
            return r;
        if (mkdirat(pfd, leaf, 0755) < 0 && errno != EEXIST)
            return -errno;
        if (fchownat(pfd, leaf, AGENT_USER_UID, AGENT_USER_GID, AT_SYMLINK_NOFOLLOW) < 0)
            return -errno;
    }
    return 0;
}

/* Parse the path of a write request and open its parent directory (creating
 * it if asked). Sends the ERROR itself and returns -1 on failure. */
int pathpolicy_open_write_parent(struct agent *a, uint32_t req_id, json_t *jpath, bool create, char *norm,
                                 const char **leaf)
{
    const char *msg;
    if (path_normalize_json(jpath, norm, &msg) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", msg);
        return -1;
    }
    if (!path_writable(norm)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, WRITES_ONLY_MSG);
        return -1;
    }
    char where[PATHPOLICY_NORM_MAX];
    if (create) {
        int r = ensure_dirs(a, norm, false, where);
        if (r == -EACCES) {
            agent_send_error(a, req_id, PROTO_ERR_INVALID, WRITES_ONLY_MSG " (%s resolves elsewhere)", where);
            return -1;
        }
        if (r < 0) {
            agent_send_errno(a, req_id, -r, "mkdir", where);
            return -1;
        }
    }
    char parent[PATHPOLICY_NORM_MAX];
    path_split(norm, parent, leaf);
    int dfd = open_in_root(a, parent, O_PATH | O_DIRECTORY);
    if (dfd < 0) {
        agent_send_errno(a, req_id, -dfd, "open", parent);
        return -1;
    }
    if (check_dir_writable(a, dfd) < 0) {
        close(dfd);
        agent_send_error(a, req_id, PROTO_ERR_INVALID, WRITES_ONLY_MSG " (%s resolves elsewhere)", parent);
        return -1;
    }
    return dfd;
}


/* ---- reads ------------------------------------------------------------------ */

int pathpolicy_open_read(struct agent *a, uint32_t req_id, json_t *jpath, enum pathpolicy_kind kind, char *norm,
                         struct stat *st)
{
    const char *msg;
    if (path_normalize_json(jpath, norm, &msg) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", msg);
        return -1;
    }
    if (path_is_kernel(norm)) {
        agent_send_error(a, req_id, PROTO_ERR_FORBIDDEN, "%s: " KERNEL_PATH_MSG, norm);
        return -1;
    }
    /* a file: O_NONBLOCK, opening a FIFO must not hang the agent */
    int flags = kind == PATHPOLICY_DIR ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK | O_NOCTTY;
    cleanup_fd int fd = open_in_root(a, norm, flags);
    if (fd < 0) {
        agent_send_errno(a, req_id, -fd, "open", norm);
        return -1;
    }
    if (kind == PATHPOLICY_FILE) {
        if (fstat(fd, st) < 0) {
            agent_send_errno(a, req_id, errno, "stat", norm);
            return -1;
        }
        if (S_ISDIR(st->st_mode)) {
            agent_send_error(a, req_id, PROTO_ERR_IS_DIR, "%s is a directory", norm);
            return -1;
        }
        if (!S_ISREG(st->st_mode)) {
            agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s is not a regular file", norm);
            return -1;
        }
    }
    if (fd_is_kernel(a, fd)) {
        agent_send_error(a, req_id, PROTO_ERR_FORBIDDEN, "%s: " KERNEL_PATH_MSG, norm);
        return -1;
    }
    return steal_fd(&fd);
}

/* STAT: the directory holding the path (O_PATH), checked as a read, with
 * *leaf the last component ("" for "/": then the fd is "/" itself, for
 * AT_EMPTY_PATH); or -1 with the ERROR sent. */
int pathpolicy_open_read_parent(struct agent *a, uint32_t req_id, json_t *jpath, char *norm, const char **leaf)
{
    const char *msg;
    if (path_normalize_json(jpath, norm, &msg) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", msg);
        return -1;
    }
    if (path_is_kernel(norm)) {
        agent_send_error(a, req_id, PROTO_ERR_FORBIDDEN, "%s: " KERNEL_PATH_MSG, norm);
        return -1;
    }
    char parent[PATHPOLICY_NORM_MAX];
    path_split(norm, parent, leaf);
    cleanup_fd int dfd = open_in_root(a, parent, O_PATH | O_DIRECTORY);
    if (dfd < 0) {
        agent_send_errno(a, req_id, -dfd, "open", parent);
        return -1;
    }
    if (fd_is_kernel(a, dfd)) {
        agent_send_error(a, req_id, PROTO_ERR_FORBIDDEN, "%s: " KERNEL_PATH_MSG, norm);
        return -1;
    }
    return steal_fd(&dfd);
}

bool pathpolicy_may_walk(struct agent *a, int dirfd, const char *norm)
{
    return !path_is_kernel(norm) && !fd_is_kernel(a, dirfd);
}

int pathpolicy_open_system_file(struct agent *a, const char *path)
{
    return open_in_root(a, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
}
