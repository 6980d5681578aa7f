/* layers.c - every sandbox gets inodes of its own for what all of them read.
 *
 * A bind mount shows the same inodes everywhere it is mounted, and an inode
 * carries state that anyone who can open it can set and read: flock and OFD
 * locks (F_OFD_GETLK reports a conflicting lock's offset: 63 bits a read),
 * inotify and dnotify watches (which also see the host's own processes
 * reading the file). With the template's /usr, /etc's host files, the runner
 * and /dev's nodes bound into every sandbox, those were channels between
 * tenants that need no network and no shared writable file.
 *
 * So each sandbox gets its own read-only overlayfs instance over each shared
 * tree: an overlay superblock has inodes of its own, and locks and fsnotify
 * marks live on the overlay inode, so they stay in the one sandbox. Reads go
 * to the lower file (its page cache is still shared: the seccomp filter
 * handles the probes of that, seccomp.c), so an overlay costs no copy and
 * no memory per sandbox beyond its inodes and dentries. Overlayfs without an
 * upper layer is read-only by construction and needs two lower layers: the
 * second is an empty tmpfs made once per daemon.
 *
 * Every overlay is made by the parent (host root, the initial user
 * namespace) with the new mount API and handed to the child as a detached
 * mount, like open_tree did before: the child attaches it with move_mount,
 * never walks host paths, and device nodes in it work (a filesystem the
 * sandbox's own user namespace mounted would be nodev).
 *
 * /dev is such an overlay too: its lower layer is a skeleton tmpfs made once
 * per daemon with the few device nodes a sandbox gets (mknod'd by host root
 * with the host nodes' numbers), mount points for pts and shm, and the
 * usual symlinks.
 *
 * Layers are named to overlayfs as /proc/self/fd/N of O_PATH descriptors:
 * no host path needs escaping (',' ':' '\' are overlay's separators), and the
 * sandbox's /proc/self/mountinfo shows those names, not the host's paths.
 *
 * Single files (ld.so.cache, the runner) cannot be overlay layers; they are
 * copied into the sandbox's own tmpfs instead (rootfs.c, mnt.c).
 */
#include "jail.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

static int sys_fsopen(const char *fs, unsigned flags)
{
    return (int)syscall(SYS_fsopen, fs, flags);
}

static int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *value, int aux)
{
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

static int sys_fsmount(int fd, unsigned flags, unsigned attrs)
{
    return (int)syscall(SYS_fsmount, fd, flags, attrs);
}

/* A new tmpfs, attached nowhere. */
static int detached_tmpfs(const char *what, char *err, size_t errlen)
{
    cleanup_fd int fs = sys_fsopen("tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0)
        return jail_err(err, errlen, -errno, "fsopen tmpfs (%s)", what);
    if (sys_fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
        sys_fsconfig(fs, FSCONFIG_SET_STRING, "size", "64k", 0) < 0 ||
        sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        return jail_err(err, errlen, -errno, "create tmpfs (%s)", what);
    int m = sys_fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    if (m < 0)
        return jail_err(err, errlen, -errno, "fsmount tmpfs (%s)", what);
    return m;
}

/* The device nodes a sandbox gets, with the host's numbers. */
static int devskel_fill(int dir, char *err, size_t errlen)
{
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    static const char *const links[][2] = {{"pts/ptmx", "ptmx"},
                                           {"/proc/self/fd", "fd"},
                                           {"/proc/self/fd/0", "stdin"},
                                           {"/proc/self/fd/1", "stdout"},
                                           {"/proc/self/fd/2", "stderr"}};
    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        char host[32];
        struct stat st;
        snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
        if (stat(host, &st) < 0)
            return jail_err(err, errlen, -errno, "stat %s", host);
        if (!S_ISCHR(st.st_mode))
            return jail_err(err, errlen, -ENODEV, "%s is not a character device", host);
        if (mknodat(dir, nodes[i], S_IFCHR | 0666, st.st_rdev) < 0)
            return jail_err(err, errlen, -errno, "mknod %s in the /dev skeleton", nodes[i]);
        /* mknod applies the umask */
        if (fchmodat(dir, nodes[i], 0666, 0) < 0)
            return jail_err(err, errlen, -errno, "chmod %s in the /dev skeleton", nodes[i]);
    }
    if (mkdirat(dir, "pts", 0755) < 0 || mkdirat(dir, "shm", 0755) < 0)
        return jail_err(err, errlen, -errno, "mkdir in the /dev skeleton");
    for (size_t i = 0; i < ARRAY_SIZE(links); i++)
        if (symlinkat(links[i][0], dir, links[i][1]) < 0)
            return jail_err(err, errlen, -errno, "symlink %s in the /dev skeleton", links[i][1]);
    return 0;
}

static int make_readonly(int mnt, const char *what, char *err, size_t errlen)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(mnt, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
        return jail_err(err, errlen, -errno, "mount_setattr ro (%s)", what);
    return 0;
}

static int overlay_of(const struct jail_layers *l, int lower_fd, unsigned attrs, const char *what, char *err,
                      size_t errlen);

int layers_init(struct jail_layers *l, char *err, size_t errlen)
{
    l->empty_fd = l->devskel_fd = -1;
    int r;
    if ((l->empty_fd = detached_tmpfs("empty layer", err, errlen)) < 0) {
        r = l->empty_fd;
        l->empty_fd = -1;
        return r;
    }
    if ((r = make_readonly(l->empty_fd, "empty layer", err, errlen)) < 0)
        goto fail;
    if ((l->devskel_fd = detached_tmpfs("/dev skeleton", err, errlen)) < 0) {
        r = l->devskel_fd;
        l->devskel_fd = -1;
        goto fail;
    }
    if ((r = devskel_fill(l->devskel_fd, err, errlen)) < 0 ||
        (r = make_readonly(l->devskel_fd, "/dev skeleton", err, errlen)) < 0)
        goto fail;
    /* one overlay now: a host without overlayfs fails at start, with the
     * reason, rather than at every create */
    int probe = overlay_of(l, l->devskel_fd, MOUNT_ATTR_RDONLY, "probe at start", err, errlen);
    if (probe < 0) {
        r = probe;
        goto fail;
    }
    close(probe);
    return 0;
fail:
    layers_fini(l);
    return r;
}

void layers_fini(struct jail_layers *l)
{
    if (l->empty_fd >= 0)
        close(l->empty_fd);
    if (l->devskel_fd >= 0)
        close(l->devskel_fd);
    l->empty_fd = l->devskel_fd = -1;
}

/* A read-only overlay of the directory lower_fd over the empty layer,
 * detached, with the given mount attributes. */
static int overlay_of(const struct jail_layers *l, int lower_fd, unsigned attrs, const char *what, char *err,
                      size_t errlen)
{
    cleanup_fd int fs = sys_fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        return jail_err(err, errlen, -errno, "fsopen overlay (%s)", what);
    char lower[64];
    snprintf(lower, sizeof(lower), "/proc/self/fd/%d:/proc/self/fd/%d", lower_fd, l->empty_fd);
    if (sys_fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0)
        return jail_err(err, errlen, -errno, "overlay lowerdir (%s)", what);
    if (sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        return jail_err(err, errlen, -errno, "create overlay (%s)", what);
    int m = sys_fsmount(fs, FSMOUNT_CLOEXEC, attrs);
    if (m < 0)
        return jail_err(err, errlen, -errno, "fsmount overlay (%s)", what);
    return m;
}

int layers_tree_ro(const struct jail_layers *l, const char *path, struct jail_tree *t, const char *target,
                   char *err, size_t errlen)
{
    cleanup_fd int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return jail_err(err, errlen, -errno, "open %s", path);
    int m = overlay_of(l, dir, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, path, err, errlen);
    if (m < 0)
        return m;
    snprintf(t->target, sizeof(t->target), "%s", target);
    t->fd = m;
    t->is_dir = true;
    return 0;
}

int layers_dev(const struct jail_layers *l, struct jail_tree *t, char *err, size_t errlen)
{
    /* not nodev: it holds the device nodes */
    int m = overlay_of(l, l->devskel_fd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, "/dev", err,
                       errlen);
    if (m < 0)
        return m;
    snprintf(t->target, sizeof(t->target), "dev");
    t->fd = m;
    t->is_dir = true;
    return 0;
}
