/* userns.c - user namespaces: who a sandbox is on the host.
 *
 * Every sandbox gets its own range of 65536 host ids, so root in one sandbox
 * is an unprivileged, otherwise unused host uid (200000 + slot*65536), and two
 * sandboxes never share an id: a process of one cannot signal, ptrace or read
 * the files of another even if it got out of its mount namespace.
 *
 * The sandbox's user namespace is also OWNED by that host uid (its
 * host_base), not by root. The kernel charges per-user counters (kernel/
 * ucount.c: inotify instances and watches, POSIX mqueue bytes, queued
 * signals, processes, namespaces) to the user in the namespace and, level
 * by level up to the host, to each namespace's owner. Were root the owner
 * of every sandbox's namespace, all sandboxes and every root process of the
 * host would share one counter each: 128 inotify instances held by one
 * sandbox would make inotify_init fail everywhere. The owner is the euid of
 * the creating thread at clone time, so the creating daemon thread takes
 * the sandbox's uid as its effective uid for the clone and nothing else
 * (caps_become_owner / caps_restore_root, around the clone in clone.c).
 *
 * Other users of the host's ids: a second daemon (its own --state-dir and
 * cgroup scope) numbers its slots from 0 as well. Two checks keep a slot
 * whose range is in use elsewhere from being handed out, both O(1) per
 * create, so a create does not get slower as the host gets busier:
 *  - every daemon holds a lock on byte `slot` of one host-wide file
 *    (JAIL_SLOT_LOCK_FILE, open file description locks) while the slot is
 *    its; the kernel drops them when the daemon dies;
 *  - a scan of /proc for processes owned by an id of our ranges (another
 *    program's containers, a daemon of an older version), cached for
 *    JAIL_HOST_SCAN_MS: walking /proc on every create cost ~2 us per host
 *    process, ~6 ms per create with 1,000 live sandboxes (~3 processes each).
 *    A process that takes up a range between two scans is not seen until
 *    the next; the lock file is what makes two daemons exact.
 */
#include "jail.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "log.h"
#include "util.h"

/* Which slots' uid ranges own a live process on the host. /proc/PID is
 * owned by the task's euid, or for a non-dumpable task by root of its user
 * namespace: for a sandbox process either way an id of its range. Best
 * effort: a /proc that cannot be read hides nothing that slot_used and the
 * lock file do not know. Our own sandboxes are in it too (slot_used already
 * excludes them; a freed slot looks busy until the next scan, which the
 * next-fit order makes harmless). */
static void slots_in_use_on_host(bool busy[JAIL_SLOTS])
{
    DIR *d = opendir("/proc");
    if (!d) {
        log_warn("jail: opendir /proc: %s; uid ranges of other programs not checked", strerror(errno));
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, 0) < 0 || sb.st_uid < JAIL_UID_BASE)
            continue;
        uid_t slot = (sb.st_uid - JAIL_UID_BASE) / JAIL_UID_COUNT;
        if (slot < JAIL_SLOTS)
            busy[slot] = true;
    }
    closedir(d);
}

/* Refresh st->host_busy if older than JAIL_HOST_SCAN_MS (or never taken).
 * The walk runs outside slot_lock: creates in other threads keep going. */
static void refresh_host_busy(struct jail_state *st)
{
    uint64_t now = now_mono_ms();
    pthread_mutex_lock(&st->slot_lock);
    bool stale = st->host_scan_ms == 0 || now - st->host_scan_ms >= JAIL_HOST_SCAN_MS;
    if (stale)
        st->host_scan_ms = now; /* one thread scans, the others use the old map meanwhile */
    pthread_mutex_unlock(&st->slot_lock);
    if (!stale)
        return;
    bool *busy = calloc(JAIL_SLOTS, sizeof(*busy));
    if (!busy)
        return;
    slots_in_use_on_host(busy);
    pthread_mutex_lock(&st->slot_lock);
    memcpy(st->host_busy, busy, sizeof(st->host_busy));
    pthread_mutex_unlock(&st->slot_lock);
    free(busy);
}

void userns_host_scan_invalidate(struct jail_state *st)
{
    pthread_mutex_lock(&st->slot_lock);
    st->host_scan_ms = 0;
    pthread_mutex_unlock(&st->slot_lock);
}

/* Lock or unlock byte `slot` of the host-wide slot file. F_OFD_SETLK: the
 * lock belongs to our open file description, so our own threads never
 * conflict with each other (slot_used is for that) and only another
 * daemon's description does. 0, -EAGAIN if another holds it. */
static int slot_file_lock(struct jail_state *st, int slot, short type)
{
    if (st->slot_lock_fd < 0)
        return 0;
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = slot, .l_len = 1};
    if (fcntl(st->slot_lock_fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    if (errno == EAGAIN || errno == EACCES)
        return -EAGAIN;
    log_warn("jail: lock slot %d in %s: %s", slot, JAIL_SLOT_LOCK_FILE, strerror(errno));
    return 0; /* a broken lock file must not stop the daemon: slot_used still holds */
}

int userns_slot_file_open(struct jail_state *st)
{
    st->slot_lock_fd = -1;
    if (mkdir(JAIL_SLOT_LOCK_DIR, 0755) < 0 && errno != EEXIST) {
        log_warn("jail: mkdir %s: %s; uid ranges not coordinated with other daemons", JAIL_SLOT_LOCK_DIR,
                 strerror(errno));
        return 0;
    }
    int fd = open(JAIL_SLOT_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        log_warn("jail: open %s: %s; uid ranges not coordinated with other daemons", JAIL_SLOT_LOCK_FILE,
                 strerror(errno));
        return 0;
    }
    st->slot_lock_fd = fd;
    return 0;
}

int userns_slot_alloc(struct jail_state *st)
{
    int slot = -EAGAIN;
    refresh_host_busy(st);
    pthread_mutex_lock(&st->slot_lock);
    for (unsigned i = 0; i < JAIL_SLOTS; i++) {
        unsigned s = (st->next_slot + i) % JAIL_SLOTS;
        if (st->slot_used[s] || st->host_busy[s])
            continue;
        if (slot_file_lock(st, (int)s, F_WRLCK) < 0)
            continue; /* another daemon's */
        st->slot_used[s] = true;
        st->next_slot = (s + 1) % JAIL_SLOTS;
        slot = (int)s;
        break;
    }
    pthread_mutex_unlock(&st->slot_lock);
    return slot;
}

void userns_slot_free(struct jail_state *st, int slot)
{
    if (slot < 0 || slot >= JAIL_SLOTS)
        return;
    pthread_mutex_lock(&st->slot_lock);
    st->slot_used[slot] = false;
    (void)slot_file_lock(st, slot, F_UNLCK);
    pthread_mutex_unlock(&st->slot_lock);
}

uid_t userns_host_base(int slot)
{
    return JAIL_UID_BASE + (uid_t)slot * JAIL_UID_COUNT;
}

/* Map sandbox ids 0..65535 onto the slot's host range. The daemon (host root)
 * writes the maps, so it may map a whole range. We deliberately leave
 * /proc/PID/setgroups at "allow": the child inherited the daemon's
 * supplementary groups (host gid 0 among them) and must be able to drop them
 * with setgroups(0, NULL); "deny" would pin host root's group in the sandbox.
 * Inside, setgroups can only pick gids of the sandbox's own range. */
int userns_write_maps(pid_t pid, uid_t host_base, char *err, size_t errlen)
{
    char path[64], map[64];
    snprintf(map, sizeof(map), "0 %u %u\n", (unsigned)host_base, JAIL_UID_COUNT);

    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
    int r = write_file(path, map);
    if (r < 0)
        return jail_err(err, errlen, r, "write %s", path);
    snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
    r = write_file(path, map);
    if (r < 0)
        return jail_err(err, errlen, r, "write %s", path);
    return 0;
}

/* child: become uid/gid 0 of the new namespace (host_base on the host) and
 * drop the daemon's supplementary groups. Raw syscalls: glibc's wrappers
 * broadcast set*id to all threads of the process, and the threads of the
 * daemon do not exist in this child, so the broadcast would never finish. */
int userns_child_become_root(struct jail_child_error *e)
{
    if (syscall(SYS_setgroups, 0, NULL) < 0)
        return child_fail(e, "setgroups", "", errno);
    if (syscall(SYS_setresgid, 0, 0, 0) < 0)
        return child_fail(e, "setresgid", "0", errno);
    if (syscall(SYS_setresuid, 0, 0, 0) < 0)
        return child_fail(e, "setresuid", "0", errno);
    return 0;
}

/* ---- the start-up check ---------------------------------------------------- */

static int child_exit_at_once(void *arg)
{
    (void)arg;
    syscall(SYS_exit_group, 0);
    return 0;
}

/* At start, not at the first request: can this host create a user namespace
 * owned by an unprivileged uid? The child exits at once. */
int userns_probe(const struct jail_state *st, char *err, size_t errlen)
{
    int pidfd = -1;
    struct clone_stack cs;
    int r = clone_stack_alloc(&cs, err, errlen);
    if (r < 0)
        return r;
    pid_t pid = clone_child(st, CLONE_NEWUSER, userns_host_base(0), child_exit_at_once, NULL, &cs, &pidfd, err, errlen);
    if (pid > 0) {
        close(pidfd);
        while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
            ;
    }
    clone_stack_free(&cs); /* after the wait: the child ran on it */
    return pid < 0 ? pid : 0;
}
