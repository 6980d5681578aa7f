/* dynmods.c - cgroup2's "favordynmods": cheap task migrations between cgroups.
 *
 * Every sandbox moves processes into its cgroups: the agent (cgroup.procs,
 * jail.c) and, with the zygote, the REPL (spawn.c). A migration takes the
 * kernel's cgroup_threadgroup_rwsem for writing, a per-cpu rwsem whose
 * writer waits for an RCU grace period unless another writer went just
 * before: measured here as single writes of cgroup.procs blocking 3-12 ms,
 * in a build that otherwise takes ~5 ms, and the tail of create latency when
 * the pool runs dry. The cgroup2 mount option favordynmods keeps that rwsem
 * in its slow mode for good: migrations never wait for a grace period, and
 * fork and exit pay an atomic instead of a per-cpu increment (the kernel's
 * cgroup-v2.rst). The flag is global (one rwsem for all hierarchies, v1
 * included), so it helps v1 hosts too, but it is set through a cgroup2 mount.
 *
 * It is a host-wide setting, so airlockd only changes it when told to
 * (--cgroup-favordynmods); otherwise it reports the state at start.
 * The remount goes through fspick + fsconfig (a reconfiguration of the
 * superblock alone: the mount's nosuid/nodev/noexec stay as they are) and
 * repeats every option the superblock has, because cgroup2 applies the
 * option set it is given, and would drop nsdelegate or
 * memory_recursiveprot otherwise.
 */
#include "jail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int cgroup2_mount(char *mnt, size_t mlen, char *opts, size_t olen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char line[4096];
    int r = -ENOENT;
    while (fgets(line, sizeof(line), f)) {
        /* id parent maj:min root mountpoint mntopts [optional...] - fstype source superopts */
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char fstype[32], super[1024];
        if (sscanf(sep + 3, "%31s %*s %1023s", fstype, super) != 2 || strcmp(fstype, "cgroup2") != 0)
            continue;
        char point[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
            continue;
        /* mountinfo escapes spaces as \040; a cgroup mount point with one is
         * not worth supporting */
        if (strchr(point, '\\'))
            continue;
        snprintf(mnt, mlen, "%s", point);
        snprintf(opts, olen, "%s", super);
        r = 0;
        break;
    }
    fclose(f);
    return r;
}

static bool has_opt(const char *opts, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = opts; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

int cgroup_favordynmods(bool set, char *msg, size_t len)
{
    char mnt[PATH_MAX], opts[1024];
    int r = cgroup2_mount(mnt, sizeof(mnt), opts, sizeof(opts));
    if (r < 0) {
        snprintf(msg, len, "no cgroup2 mount to set favordynmods on (%s)", strerror(-r));
        return r;
    }
    if (has_opt(opts, "favordynmods")) {
        snprintf(msg, len, "cgroup2 %s has favordynmods: cgroup migrations do not wait for RCU", mnt);
        return 1;
    }
    if (!set) {
        snprintf(msg, len, "cgroup2 %s lacks favordynmods: each cgroup migration may wait for an RCU grace "
                           "period (--cgroup-favordynmods sets it host-wide)", mnt);
        return 0;
    }
    int fd = fspick(AT_FDCWD, mnt, FSPICK_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, len, "fspick %s: %s", mnt, strerror(errno));
        return -errno;
    }
    /* the superblock's own options again, then ours */
    char *save = NULL;
    for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (strcmp(o, "rw") == 0 || strcmp(o, "ro") == 0)
            continue; /* a mount flag in this list, not a cgroup2 option */
        if (fsconfig(fd, FSCONFIG_SET_FLAG, o, NULL, 0) < 0) {
            snprintf(msg, len, "fsconfig %s %s: %s", mnt, o, strerror(errno));
            r = -errno;
            goto out;
        }
    }
    if (fsconfig(fd, FSCONFIG_SET_FLAG, "favordynmods", NULL, 0) < 0 ||
        fsconfig(fd, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) < 0) {
        snprintf(msg, len, "reconfigure %s with favordynmods: %s", mnt, strerror(errno));
        r = -errno;
        goto out;
    }
    snprintf(msg, len, "cgroup2 %s remounted with favordynmods: cgroup migrations no longer wait for RCU", mnt);
    r = 1;
out:
    close(fd);
    return r;
}
