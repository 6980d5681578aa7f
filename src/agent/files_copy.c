/* files_copy.c - a move between mounts (files_impl.h): copy, rename into
 * place, delete the source, as mv(1) does. Only ever called by RENAME,
 * after the path policy opened both parents as writes; the copy works on
 * *at() calls below those two descriptors and never follows a symlink
 * (a link is copied as a link). The copy is made under a hidden temporary
 * name (FILES_TMP_PREFIX: not listed, not reported by a watch) and appears
 * at the destination in one rename, so a failed copy (no_space) leaves
 * nothing behind and the source untouched. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "files_impl.h"
#include "util.h"

static int copy_bytes(int in, int out)
{
    for (bool cfr = true;;) {
        if (cfr) {
            ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
            if (n > 0)
                continue;
            if (n == 0)
                return 0;
            if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                return -errno;
            cfr = false; /* not between these two: copy by hand */
        }
        static char buf[64 * 1024]; /* the agent is single-threaded */
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0)
            return errno == EINTR ? 0 : -errno;
        if (n == 0)
            return 0;
        int r = write_all(out, buf, (size_t)n);
        if (r < 0)
            return r;
    }
}

/* Owner, mode and times of st onto fd (a regular file or a directory). */
static int copy_attrs(int fd, const struct stat *st)
{
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0 || futimens(fd, ts) < 0)
        return -errno;
    return 0;
}

static int copy_node(int sdir, const char *sname, int ddir, const char *dname, int depth);

static int copy_dir_contents(int sdir, const char *sname, int ddir, const char *dname, int depth)
{
    cleanup_fd int sfd = openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    cleanup_fd int dfd = openat(ddir, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0 || dfd < 0)
        return -errno;
    cleanup_strv char **names = NULL;
    int n = files_read_dir_names(sfd, &names);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        int r = copy_node(sfd, names[i], dfd, names[i], depth + 1);
        if (r < 0 && r != -ENOENT) /* ENOENT: removed meanwhile */
            return r;
    }
    return 0;
}

static int copy_node(int sdir, const char *sname, int ddir, const char *dname, int depth)
{
    if (depth > FILES_MAX_DEPTH)
        return -ELOOP;
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (S_ISREG(st.st_mode)) {
        cleanup_fd int in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (in < 0)
            return -errno;
        cleanup_fd int out = openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
            return -errno;
        int r = copy_bytes(in, out);
        if (r == 0)
            r = copy_attrs(out, &st);
        if (close(steal_fd(&out)) < 0 && r == 0)
            r = -errno;
        return r;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(sdir, sname, target, sizeof(target) - 1);
        if (n < 0)
            return -errno;
        target[n] = '\0';
        if (symlinkat(target, ddir, dname) < 0 || fchownat(ddir, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
            return -errno;
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdirat(ddir, dname, 0700) < 0)
            return -errno;
        int r = copy_dir_contents(sdir, sname, ddir, dname, depth);
        if (r < 0)
            return r;
        cleanup_fd int dfd = openat(ddir, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return dfd < 0 ? -errno : copy_attrs(dfd, &st); /* last: the contents changed its mtime */
    }
    return -EOPNOTSUPP; /* a FIFO, socket or device: not a file to move */
}

/* Remove what name in dirfd is, whatever it is (a failed copy's remains,
 * or the source once copied). */
static int remove_node(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode)) {
        int r = files_remove_tree_contents(dirfd, name, 0);
        if (r < 0)
            return r;
    }
    return unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
}

int files_move_across(int sfd, const char *sleaf, int dfd, const char *dleaf, bool overwrite, int *err)
{
    struct stat st;
    if (!overwrite && fstatat(dfd, dleaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return -EEXIST; /* before copying anything; the rename below checks again */
    char tmp[64], rnd[17];
    if (random_hex(rnd, 8) < 0)
        snprintf(rnd, sizeof(rnd), "%d", getpid());
    snprintf(tmp, sizeof(tmp), FILES_TMP_PREFIX "mv-%s", rnd);
    int r = copy_node(sfd, sleaf, dfd, tmp, 0);
    if (r == 0 && renameat2(dfd, tmp, dfd, dleaf, overwrite ? 0 : RENAME_NOREPLACE) < 0)
        r = -errno;
    if (r < 0) {
        (void)remove_node(dfd, tmp);
        return r;
    }
    r = remove_node(sfd, sleaf);
    if (r < 0) {
        *err = -r;
        return 1;
    }
    return 0;
}
