/* caps.c - the capabilities of the daemon's threads, all in one place.
 *
 * caps_have answers what the daemon may do (jail_init asks for
 * CAP_SYS_RESOURCE). caps_become_owner / caps_restore_root make the creating
 * thread, for the clone alone, the unprivileged host uid that is to own the
 * sandbox's user namespace (userns.c says why the owner matters) while it
 * keeps its capabilities, and return it to uid 0 with them afterwards
 * (clone.c calls them around the clone).
 */
#include "jail.h"

#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "log.h"

bool caps_have(int cap)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) < 0)
        return false;
    return data[cap / 32].effective & (1u << (cap % 32));
}

static int caps_get(struct __user_cap_data_struct caps[2])
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    memset(caps, 0, 2 * sizeof(*caps));
    return syscall(SYS_capget, &hdr, caps) < 0 ? -errno : 0;
}

/* pid 0: the calling thread only. Raising effective bits needs them in the
 * permitted set, which a change of euid alone never clears. */
static int caps_set(const struct __user_cap_data_struct caps[2])
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct c[2] = {caps[0], caps[1]};
    return syscall(SYS_capset, &hdr, c) < 0 ? -errno : 0;
}

/* Raw syscalls, so only the calling thread changes: glibc's wrappers would
 * make every daemon thread (HTTP handlers included) host_base for a moment.
 * Only the effective (and with it the filesystem) ids change; the real and
 * saved ids stay 0, which is what lets the thread return to 0 unprivileged
 * and what keeps the permitted capabilities. The kernel clears the
 * effective capabilities when the euid leaves 0; we put them back, so the
 * clone itself is as privileged as before (a Debian kernel with
 * kernel.unprivileged_userns_clone=0 or an LSM that restricts unprivileged
 * user namespaces lets a CAP_SYS_ADMIN caller through) and only the owner
 * differs. The caller blocks signals: no handler runs with these ids. */
int caps_become_owner(uid_t host_base, struct caps_saved_ids *saved, char *err, size_t errlen)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (syscall(SYS_getresuid, &ru, &eu, &su) < 0 || syscall(SYS_getresgid, &rg, &eg, &sg) < 0)
        return jail_err(err, errlen, -errno, "getresuid");
    if (ru != 0 || eu != 0 || su != 0 || rg != 0 || eg != 0 || sg != 0)
        return jail_err(err, errlen, -EPERM, "sandbox creation needs uid/gid 0, this thread has %u/%u",
                        (unsigned)eu, (unsigned)eg);
    int r = caps_get(saved->caps);
    if (r < 0)
        return jail_err(err, errlen, r, "capget");
    if (syscall(SYS_setresgid, -1, host_base, -1) < 0)
        return jail_err(err, errlen, -errno, "setresgid(-1, %u, -1)", (unsigned)host_base);
    if (syscall(SYS_setresuid, -1, host_base, -1) < 0) {
        r = -errno;
        caps_restore_root(saved);
        return jail_err(err, errlen, r, "setresuid(-1, %u, -1)", (unsigned)host_base);
    }
    if ((r = caps_set(saved->caps)) < 0) {
        caps_restore_root(saved);
        return jail_err(err, errlen, r, "capset (effective capabilities as uid %u)", (unsigned)host_base);
    }
    return 0;
}

/* Back to 0 for good, or no daemon: a thread that kept an unprivileged euid
 * would go on serving requests as the sandbox's host uid, failing or, worse,
 * creating files that sandbox owns. Every step is checked, and the end
 * state verified rather than assumed. */
void caps_restore_root(const struct caps_saved_ids *saved)
{
    /* allowed without privilege: 0 is our real and saved uid; returning to
     * euid 0 also makes the effective capabilities the permitted ones */
    if (syscall(SYS_setresuid, -1, 0, -1) < 0 || syscall(SYS_setresgid, -1, 0, -1) < 0 || caps_set(saved->caps) < 0) {
        log_error("jail: cannot return to uid 0 after creating a user namespace: %s; aborting", strerror(errno));
        abort();
    }
    uid_t ru = 1, eu = 1, su = 1;
    gid_t rg = 1, eg = 1, sg = 1;
    struct __user_cap_data_struct now[2];
    if (syscall(SYS_getresuid, &ru, &eu, &su) < 0 || syscall(SYS_getresgid, &rg, &eg, &sg) < 0 ||
        caps_get(now) < 0 || ru || eu || su || rg || eg || sg || memcmp(now, saved->caps, sizeof(now)) != 0) {
        log_error("jail: ids or capabilities not restored after creating a user namespace "
                  "(uid %u/%u/%u gid %u/%u/%u); aborting",
                  (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg, (unsigned)sg);
        abort();
    }
    /* A change of euid also made the whole process non-dumpable
     * (fs.suid_dumpable, default 0). Put back what the daemon had. */
    if (prctl(PR_SET_DUMPABLE, saved->dumpable, 0, 0, 0) < 0)
        log_warn("jail: prctl(PR_SET_DUMPABLE, %d): %s", saved->dumpable, strerror(errno));
}
