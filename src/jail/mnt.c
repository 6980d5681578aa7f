/* mnt.c - the filesystem a sandbox sees.
 *
 *   /            tmpfs, read-only once built (only mount points and symlinks);
 *                nosuid, nodev, noexec
 *   /usr         host (or template) /usr, read-only, nosuid, nodev: an overlay
 *                of its own per sandbox (layers.c), so the inodes, and the
 *                locks and watches on them, are the sandbox's
 *   /bin /sbin /lib /lib64   symlinks into usr (merged-/usr layout)
 *   /etc         small tmpfs: generated files (rootfs.c) + copies of a few
 *                host files (ld.so.cache, mime.types...) and overlays of a few
 *                host directories (alternatives, python3...), then ro;
 *                nosuid, nodev, noexec
 *   /opt/airlock/airlock_runner.py   a copy in the root tmpfs (or an overlay
 *                of a runner directory), read-only
 *   /tmp /data /home/user /dev/shm   directories of ONE size-capped tmpfs,
 *                all nosuid, nodev: a single budget for everything the sandbox
 *                can store, set below its memory limit (see mnt_setup_scratch).
 *                /data and /dev/shm are also noexec: uploads and shared memory
 *                are data. /tmp and /home/user keep exec, because real Python
 *                work runs code it wrote there: gcc, cffi, numba, Cython and
 *                distutils compile into /tmp and load or run the result (dlopen
 *                maps it PROT_EXEC, which noexec refuses with EPERM/EACCES),
 *                and pip install --user puts console scripts and compiled
 *                extension modules (.so) under ~/.local. tests/jail checks
 *                both halves (a binary runs from /tmp and /home/user, the same
 *                binary fails with EACCES from /data and /dev/shm).
 *   /dev         read-only overlay of a skeleton with null zero full random
 *                urandom tty (nodes of its own, host numbers), nosuid, noexec
 *                but not nodev; own devpts (nosuid, noexec, at most
 *                JAIL_PTY_MAX ptys) and the scratch tmpfs's shm on top
 *   /proc        this pid namespace only (nosuid, nodev, noexec), with
 *                Docker's masks: kcore, keys, latency_stats, timer_list,
 *                timer_stats, sched_debug, kallsyms, modules, config.gz
 *                covered by /dev/null; acpi, asound, scsi by an empty
 *                read-only tmpfs; bus, fs, irq, sys, sysrq-trigger read-only;
 *                and the host-wide tables other tenants' objects show in
 *                (locks, cgroups, key-users, pressure, a few counters)
 *   /proc/meminfo  a file of a private tmpfs bound read-only over the
 *                kernel's; the agent rewrites it through the fd it keeps
 *                (src/agent/meminfo.c: the sandbox's limit and cgroup usage)
 *   /sys         a read-only tmpfs with devices/system/cpu/{online,possible,
 *                present} only: the sandbox's CPUs (sysview.c). No other
 *                sysfs, and no cgroupfs (user code cannot mount one: no
 *                capabilities, and seccomp refuses mount)
 *
 * Host trees are overlaid by the parent (host root, layers.c) into detached,
 * read-only mounts, and the child attaches them with move_mount. Everything
 * else is built by the child inside its own user+mount namespace, relative to
 * its cwd (the new root), then pivot_root makes it "/".
 *
 * Everything below "child:" runs between clone and exec: raw syscalls only.
 */
#include "jail.h"

#include <fcntl.h>
#include <stdio.h> /* parent only */
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "sandbox_etc.h"
#include "util.h"

/* Where the child builds the new root: a tmpfs mounted over /tmp of its
 * private mount namespace (the host's /tmp is untouched), as bubblewrap does. */
#define STAGING_DIR "/tmp"

/* parent */
static unsigned long long sysctl_ull(const char *path)
{
    char buf[32];
    return read_file_small(path, buf, sizeof(buf)) < 0 ? 0 : strtoull(buf, NULL, 10);
}

/* Each sandbox's devpts is capped at JAIL_PTY_MAX, and every instance but
 * the host's draws from kernel.pty.max minus kernel.pty.reserve (the reserve
 * keeps the host's own ptys). Like kernel.pid_max, the operator decides. */
void mnt_check_pty_pool(unsigned sandboxes)
{
    unsigned long long max = sysctl_ull("/proc/sys/kernel/pty/max");
    unsigned long long reserve = sysctl_ull("/proc/sys/kernel/pty/reserve");
    unsigned long long need = (unsigned long long)sandboxes * JAIL_PTY_MAX;
    if (!max)
        return;
    if (max <= reserve || max - reserve < need)
        log_warn("jail: kernel.pty.max %llu - kernel.pty.reserve %llu leaves fewer ptys than %u sandboxes of %u "
                 "each (%llu): a sandbox's openpty may fail with ENOSPC (raise it: sysctl kernel.pty.max=%llu)",
                 max, reserve, sandboxes, JAIL_PTY_MAX, need, need + reserve);
}

/* ---- child from here on ---------------------------------------------------- */

/* Record a failure on a path relative to the new root as "/path". */
static int fail_at(struct jail_child_error *e, const char *op, const char *rel, int err)
{
    char shown[sizeof(e->path)];
    shown[0] = '/';
    size_t n = strnlen(rel, sizeof(shown) - 2);
    memcpy(shown + 1, rel, n);
    shown[n + 1] = '\0';
    return child_fail(e, op, strcmp(rel, ".") == 0 ? "/" : shown, err);
}

static int child_mkdir(const char *rel, mode_t mode, struct jail_child_error *e)
{
    if (mkdir(rel, mode) < 0 && errno != EEXIST)
        return fail_at(e, "mkdir", rel, errno);
    return 0;
}

/* An empty regular file to bind a file over. */
static int child_touch(const char *rel, struct jail_child_error *e)
{
    int fd = open(rel, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        return fail_at(e, "create", rel, errno);
    close(fd);
    return 0;
}

static int child_symlink(const char *target, const char *rel, struct jail_child_error *e)
{
    if (symlink(target, rel) < 0)
        return fail_at(e, "symlink", rel, errno);
    return 0;
}

static int child_mount_tmpfs(const char *rel, const char *opts, unsigned long flags, struct jail_child_error *e)
{
    if (mount("tmpfs", rel, "tmpfs", flags, opts) < 0)
        return fail_at(e, "mount tmpfs", rel, errno);
    return 0;
}

static int child_bind(const char *src, const char *rel, struct jail_child_error *e)
{
    if (mount(src, rel, NULL, MS_BIND | MS_REC, NULL) < 0)
        return fail_at(e, "bind mount", rel, errno);
    return 0;
}

/* Make a mount we created in this namespace read-only. MS_REMOUNT|MS_BIND
 * changes only the per-mount flags, so flags must be restated. */
static int child_remount_ro(const char *rel, unsigned long flags, struct jail_child_error *e)
{
    if (mount(NULL, rel, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) < 0)
        return fail_at(e, "remount ro", rel, errno);
    return 0;
}

/* Add per-mount flags to a mount, keeping the ones it has. A bind of a host
 * mount carries the host's flags, locked in our user namespace: a remount
 * that leaves one of them out is EPERM, so they are read back first (statfs
 * reports them as ST_* bits, which equal the MS_* ones). */
static int child_remount_add(const char *rel, unsigned long add, struct jail_child_error *e)
{
    static const unsigned long keep = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    struct statfs sf;
    if (statfs(rel, &sf) < 0)
        return fail_at(e, "statfs", rel, errno);
    unsigned long flags = ((unsigned long)sf.f_flags & keep) | add;
    if (mount(NULL, rel, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
        return fail_at(e, "remount", rel, errno);
    return 0;
}

/* Attach a detached tree the parent cloned for us (see jail.h). */
static int child_attach_tree(const struct jail_tree *t, struct jail_child_error *e)
{
    int r = t->is_dir ? child_mkdir(t->target, 0755, e) : child_touch(t->target, e);
    if (r < 0)
        return r;
    if (move_mount(t->fd, "", AT_FDCWD, t->target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return fail_at(e, "move_mount", t->target, errno);
    return 0;
}

static bool child_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Mount events must not propagate back to the host (or in from it). */
static int mnt_make_private(struct jail_child_error *e)
{
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return child_fail(e, "make mounts private", "/", errno);
    return 0;
}

static int mnt_mount_staging_root(const struct jail_plan *p, struct jail_child_error *e)
{
    if (mount("tmpfs", STAGING_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, p->root_opts) < 0)
        return child_fail(e, "mount tmpfs", STAGING_DIR, errno);
    if (chdir(STAGING_DIR) < 0)
        return child_fail(e, "chdir", STAGING_DIR, errno);
    return 0;
}

static int mnt_setup_usr(const struct jail_plan *p, struct jail_child_error *e)
{
    static const char *const links[][2] = {
        {"usr/bin", "bin"}, {"usr/sbin", "sbin"}, {"usr/lib", "lib"}, {"usr/lib64", "lib64"}};
    int r = child_attach_tree(&p->usr, e);
    for (size_t i = 0; r == 0 && i < sizeof(links) / sizeof(links[0]); i++)
        r = child_symlink(links[i][0], links[i][1], e);
    return r;
}

static int mnt_setup_etc(const struct jail_plan *p, struct jail_child_error *e)
{
    int r;
    if ((r = child_mkdir("etc", 0755, e)) < 0 ||
        (r = child_mount_tmpfs("etc", p->etc_opts, MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0 ||
        (r = rootfs_write_etc(p, e)) < 0)
        return r;
    for (size_t i = 0; i < p->n_etc_binds; i++)
        if ((r = child_attach_tree(&p->etc_binds[i], e)) < 0)
            return r;
    for (size_t i = 0; i < p->n_etc_links; i++) {
        char rel[sizeof(p->etc_links[i].name) + 4]; /* "etc/name", relative to the new root */
        snprintf(rel, sizeof(rel), "etc/%s", p->etc_links[i].name);
        if ((r = child_symlink(p->etc_links[i].target, rel, e)) < 0)
            return r;
    }
    return child_remount_ro("etc", MS_NOSUID | MS_NODEV | MS_NOEXEC, e);
}

/* The runners are files copied to /opt/airlock (airlock_runner.py, .R,
 * .mjs; the root tmpfs is made read-only at the end), or a directory
 * overlaid at /opt/airlock. */
static int mnt_setup_runner(const struct jail_plan *p, struct jail_child_error *e)
{
    int r;
    if (p->runner.fd < 0 && p->n_runner_files == 0)
        return 0;
    if ((r = child_mkdir("opt", 0755, e)) < 0)
        return r;
    if (p->runner.fd >= 0)
        return child_attach_tree(&p->runner, e);
    if ((r = child_mkdir("opt/airlock", 0755, e)) < 0)
        return r;
    for (size_t i = 0; i < p->n_runner_files; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "opt/airlock/%s", p->runner_files[i].name);
        if ((r = rootfs_child_write(rel, p->runner_files[i].data, p->runner_files[i].len, 0444, e)) < 0)
            return r;
    }
    return 0;
}

/* The writable places, all memory-backed: nothing a sandbox writes ever
 * reaches the host disk, and it all vanishes with the namespace.
 *
 * They are directories of one tmpfs, bound into place, so a single size cap
 * covers them all. tmpfs pages are charged to the sandbox's memory cgroup and
 * cannot be reclaimed (no swap): if the sandbox's files could fill its whole
 * memory limit, the OOM killer would run out of user processes to kill and
 * take the agent, ending the sandbox. With one cap below the limit, a full
 * disk is ENOSPC (an upload gets 507 no_space) and the agent lives on.
 *
 * The tmpfs is mounted at a hidden staging point of the new root, its
 * directories are bound where they belong, and the staging mount is then
 * detached; the binds keep the one superblock alive. */
#define SCRATCH_DIR ".scratch"

static int scratch_mkdir(const char *rel, mode_t mode, bool user_owned, struct jail_child_error *e)
{
    int r = child_mkdir(rel, mode, e);
    if (r < 0)
        return r;
    /* mkdir applies the umask; the sticky bit and exact mode must stick */
    if (chmod(rel, mode) < 0)
        return fail_at(e, "chmod", rel, errno);
    if (user_owned && chown(rel, JAIL_USER_UID, JAIL_USER_UID) < 0)
        return fail_at(e, "chown", rel, errno);
    return 0;
}

static int mnt_setup_scratch(const struct jail_plan *p, struct jail_child_error *e)
{
    /* exec: why /tmp and /home/user keep it is in the header */
    static const struct {
        const char *src, *dst;
        mode_t mode;
        bool user_owned;
        bool exec;
    } dirs[] = {
        {SCRATCH_DIR "/tmp", "tmp", 01777, false, true},
        {SCRATCH_DIR "/data", "data", 0755, true, false},
        {SCRATCH_DIR "/home", "home/user", 0755, true, true},
        {SCRATCH_DIR "/shm", "dev/shm", 01777, false, false},
    };
    int r;
    if ((r = child_mkdir(SCRATCH_DIR, 0700, e)) < 0 ||
        (r = child_mount_tmpfs(SCRATCH_DIR, p->scratch_opts, MS_NOSUID | MS_NODEV, e)) < 0 ||
        (r = child_mkdir("home", 0755, e)) < 0)
        return r;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if ((r = scratch_mkdir(dirs[i].src, dirs[i].mode, dirs[i].user_owned, e)) < 0 ||
            (r = child_mkdir(dirs[i].dst, 0755, e)) < 0 || (r = child_bind(dirs[i].src, dirs[i].dst, e)) < 0)
            return r;
        /* a bind starts with the tmpfs's flags; noexec is per bind */
        if (!dirs[i].exec && (r = child_remount_add(dirs[i].dst, MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0)
            return r;
    }
    if (umount2(SCRATCH_DIR, MNT_DETACH) < 0)
        return fail_at(e, "umount", SCRATCH_DIR, errno);
    if (rmdir(SCRATCH_DIR) < 0)
        return fail_at(e, "rmdir", SCRATCH_DIR, errno);
    /* No /root: nothing runs as root inside but the agent, whose HOME is /. */
    return 0;
}

/* /dev is the parent's overlay of the skeleton (layers.c): device nodes
 * that work (a tmpfs mounted in our user namespace would be implicitly
 * nodev) and are this sandbox's own inodes, read-only. On top: a devpts
 * instance of the sandbox's own, capped (the pty pool is host-wide), and
 * later the scratch tmpfs's shm (mnt_setup_scratch). */
static int mnt_setup_dev(const struct jail_plan *p, struct jail_child_error *e)
{
    int r = child_attach_tree(&p->dev, e);
    if (r < 0)
        return r;
    if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, p->devpts_opts) < 0)
        return fail_at(e, "mount devpts", "dev/pts", errno);
    return 0;
}

/* A fresh proc for the new pid namespace (the child is its PID 1, so it shows
 * the sandbox's processes only), with Docker's masks (its MaskedPaths and
 * ReadonlyPaths): files that leak host kernel state (addresses, timers,
 * keys, modules, the kernel config) are covered by /dev/null, directories of
 * host hardware by an empty read-only tmpfs, and the knobs that act on the
 * host or the namespace are read-only (the sandbox's root could otherwise
 * write the namespaced sysctls). Entries this kernel does not have are
 * skipped. */
static int mnt_setup_proc(struct jail_child_error *e)
{
    int r;
    if ((r = child_mkdir("proc", 0555, e)) < 0)
        return r;
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return fail_at(e, "mount proc", "proc", errno);
    const char *const *masked_files = sandbox_proc_masked_files, *const *masked_dirs = sandbox_proc_masked_dirs,
                      *const *read_only = sandbox_proc_read_only;
    for (size_t i = 0; masked_files[i]; i++)
        if (child_exists(masked_files[i]) && (r = child_bind("dev/null", masked_files[i], e)) < 0)
            return r;
    for (size_t i = 0; masked_dirs[i]; i++)
        if (child_exists(masked_dirs[i]) &&
            (r = child_mount_tmpfs(masked_dirs[i], "mode=0555,size=4k",
                                   MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0)
            return r;
    for (size_t i = 0; read_only[i]; i++)
        if (child_exists(read_only[i]) && ((r = child_bind(read_only[i], read_only[i], e)) < 0 ||
                                           (r = child_remount_ro(read_only[i], MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0))
            return r;
    return 0;
}

/* /proc/meminfo: an empty file of a private tmpfs (the agent fills it before
 * any user code runs), bound read-only over the kernel's. The staging mount
 * is detached at once: the bind and the read-write fd returned in *fd_out
 * (the agent's fd 5) keep the one small superblock alive, and no path leads
 * to a writable view of it. */
#define MEMINFO_DIR ".meminfo"
static int mnt_setup_meminfo(int *fd_out, struct jail_child_error *e)
{
    int r;
    if ((r = child_mkdir(MEMINFO_DIR, 0700, e)) < 0 ||
        (r = child_mount_tmpfs(MEMINFO_DIR, "mode=0700,size=64k", MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0)
        return r;
    int fd = open(MEMINFO_DIR "/meminfo", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        return fail_at(e, "create", MEMINFO_DIR "/meminfo", errno);
    if ((r = child_bind(MEMINFO_DIR "/meminfo", "proc/meminfo", e)) < 0 ||
        (r = child_remount_ro("proc/meminfo", MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0) {
        close(fd);
        return r;
    }
    if (umount2(MEMINFO_DIR, MNT_DETACH) < 0 || rmdir(MEMINFO_DIR) < 0) {
        int err = errno;
        close(fd);
        return fail_at(e, "detach", MEMINFO_DIR, err);
    }
    *fd_out = fd;
    return 0;
}

static int child_write_file(const char *rel, const char *text, struct jail_child_error *e)
{
    int fd = open(rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        return fail_at(e, "create", rel, errno);
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int err = errno;
    close(fd);
    if (n != (ssize_t)len)
        return fail_at(e, "write", rel, n < 0 ? err : EIO);
    return 0;
}

/* /sys: the sandbox's CPUs and nothing else (sysview.c). */
static int mnt_setup_sys(const struct jail_plan *p, struct jail_child_error *e)
{
    if (!p->cpu_list[0])
        return 0; /* the daemon could not read its own affinity: no view */
    char line[sizeof(p->cpu_list) + 1];
    size_t n = strlen(p->cpu_list);
    memcpy(line, p->cpu_list, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    static const char *const dirs[] = {"sys", "sys/devices", "sys/devices/system", "sys/devices/system/cpu"};
    static const char *const files[] = {"sys/devices/system/cpu/online", "sys/devices/system/cpu/possible",
                                        "sys/devices/system/cpu/present"};
    int r;
    if ((r = child_mkdir("sys", 0555, e)) < 0 ||
        (r = child_mount_tmpfs("sys", "mode=0555,size=16k", MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0)
        return r;
    for (size_t i = 1; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if ((r = child_mkdir(dirs[i], 0555, e)) < 0)
            return r;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if ((r = child_write_file(files[i], line, e)) < 0)
            return r;
    return child_remount_ro("sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, e);
}

int mnt_build_root(const struct jail_plan *p, int *meminfo_fd, struct jail_child_error *e)
{
    int r;
    if ((r = mnt_make_private(e)) < 0 || (r = mnt_mount_staging_root(p, e)) < 0 ||
        (r = mnt_setup_usr(p, e)) < 0 || (r = mnt_setup_etc(p, e)) < 0 || (r = mnt_setup_runner(p, e)) < 0 ||
        (r = mnt_setup_dev(p, e)) < 0 || (r = mnt_setup_scratch(p, e)) < 0 || (r = mnt_setup_proc(e)) < 0 ||
        (r = mnt_setup_meminfo(meminfo_fd, e)) < 0 || (r = mnt_setup_sys(p, e)) < 0)
        return r;
    /* last: nothing more to create at the top level */
    return child_remount_ro(".", MS_NOSUID | MS_NODEV | MS_NOEXEC, e);
}

/* Make the cwd (the new root) "/" and drop the old root entirely. The
 * pivot_root(".", ".") idiom stacks the old root on top of the new one at
 * "/"; detaching it leaves only the new root, and no path (not even via
 * /proc/self/cwd or "..") leads back to the host tree. */
int mnt_pivot_root(struct jail_child_error *e)
{
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return child_fail(e, "pivot_root", STAGING_DIR, errno);
    if (umount2(".", MNT_DETACH) < 0)
        return child_fail(e, "umount old root", "/", errno);
    if (chdir("/") < 0)
        return child_fail(e, "chdir", "/", errno);
    return 0;
}
