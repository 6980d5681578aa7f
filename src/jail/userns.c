/* userns.c - user namespaces: who a sandbox is on the host.
 *
 * Every sandbox gets its own range of 65536 host ids, so root in one sandbox
 * is an unprivileged, otherwise unused host uid (200000 + slot*65536), and two
 * sandboxes never share an id: a process of one cannot signal, ptrace or read
 * the files of another even if it got out of its mount namespace.
 */
#include "jail.h"

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

int userns_slot_alloc(struct jail_state *st)
{
    int slot = -EAGAIN;
    pthread_mutex_lock(&st->slot_lock);
    for (unsigned i = 0; i < JAIL_SLOTS; i++) {
        unsigned s = (st->next_slot + i) % JAIL_SLOTS;
        if (!st->slot_used[s]) {
            st->slot_used[s] = true;
            st->next_slot = (s + 1) % JAIL_SLOTS;
            slot = (int)s;
            break;
        }
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
