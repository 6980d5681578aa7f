/* landlock.c - the filesystem and IPC boundary of the agent and its children.
 *
 * The agent restricts ITSELF once at start, after the seccomp policy is built
 * and before the REPL starts. Every user process (the REPL, exec and bash
 * children, their background jobs) then lives in that one Landlock domain:
 * they can still signal and reach each other across calls, while nothing in
 * the sandbox can signal a process or connect to an abstract unix socket
 * outside it, nor write outside the places listed here. This is a second
 * wall behind the mounts (read-only root, nosuid/nodev) and behind uid 1000:
 * it holds even where a mount is writable and DAC would allow the write
 * (a 0777 directory, a file the user owns outside the scratch dirs), and it
 * binds the agent itself (root in its user namespace) too.
 *
 *   beneath /                  read files, list directories, execute
 *   beneath ROOT/tmp, ROOT/data, ROOT/home/user, /dev/shm
 *                              + create, write, truncate, remove, rename and
 *                              link files, dirs, FIFOs, sockets, symlinks
 *                              (not device nodes)
 *   beneath /dev               + write, truncate, device ioctls: /dev/null,
 *                              /dev/tty, /dev/pts/N (shells, `> /dev/null`)
 *   beneath /proc              + write to existing files: proc.c writes
 *                              /proc/self/oom_score_adj in each child, which
 *                              is already inside the domain. What else uid
 *                              1000 may write there is the process's own
 *                              attributes (DAC); /proc/sys and the other
 *                              host-wide files are read-only mounts or masked
 *                              (jail/mnt.c), so this grant adds nothing.
 *   scopes                     abstract unix sockets and signals
 *
 * ROOT is --root ("/" in production). The three dirs files.c serves uploads
 * from are taken relative to it; /dev, /dev/shm and /proc are the process's
 * real ones, because libc and the kernel name them by absolute path (sem_open
 * and shm_open use /dev/shm, shells /dev/null, proc.c /proc/self). In
 * production, where ROOT is "/", the two readings are the same; in the agent
 * tests (agent on the host, --root a scratch dir) user code may write under
 * ROOT/tmp, ROOT/data, ROOT/home/user and the host's /dev/shm, nowhere else.
 *
 * Every filesystem right the running kernel knows is "handled", so anything
 * not granted above is denied (including make_char/make_block everywhere).
 * Network rights (ABI 4) are deliberately not handled: Landlock's TCP rules
 * are per port, and where a sandbox may connect is the jail's network
 * namespace and egress policy.
 *
 * Best effort, as the kernel documentation describes: the ABI is read at
 * start and rights the kernel does not know are dropped (ABI 1: no
 * cross-directory rename or link at all; < 3: truncate not controlled;
 * < 5: device ioctls not controlled; < 6: no scoping; < 7: no denial logs).
 * With ABI 7 denials of user programs are logged to the audit log
 * (LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON), but only while kernel auditing
 * is enabled (auditd, or audit=1 at boot): unlike seccomp's records, which
 * reach dmesg even with audit off, Landlock's are dropped then. Without
 * Landlock at all the agent runs on (the mounts and uid still hold) and logs
 * why.
 *
 * No liblandlock in Debian 12: raw syscalls, with the constants newer than
 * its <linux/landlock.h> defined here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"
#include "util.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1) /* ABI 6 */
#endif
#ifndef LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON
#define LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (1U << 1) /* ABI 7 */
#endif

/* The ABI 6 layout of struct landlock_ruleset_attr (Debian 12's header has
 * only the first field). Older kernels accept the larger struct as long as
 * the fields they do not know are zero. */
struct ruleset_attr {
    __u64 handled_access_fs;
    __u64 handled_access_net;
    __u64 scoped;
};

#define FS_READ (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_WRITE_TREE                                                                                            \
    (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |              \
     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                    \
     LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER |                        \
     LANDLOCK_ACCESS_FS_TRUNCATE)
#define FS_DEV (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_PROC LANDLOCK_ACCESS_FS_WRITE_FILE
#define FS_ALL_ABI5 ((LANDLOCK_ACCESS_FS_IOCTL_DEV << 1) - 1) /* bits 0..15 */

struct grant {
    const char *path;
    bool under_root; /* relative to --root, else to "/" */
    __u64 access;
};

static const struct grant grants[] = {
    {"/", false, FS_READ},
    {"tmp", true, FS_WRITE_TREE},
    {"data", true, FS_WRITE_TREE},
    {"home/user", true, FS_WRITE_TREE},
    {"/dev/shm", false, FS_WRITE_TREE},
    {"/dev", false, FS_DEV},
    {"/proc", false, FS_PROC},
};

static long ll_create_ruleset(const struct ruleset_attr *attr, size_t size, __u32 flags)
{
    return syscall(__NR_landlock_create_ruleset, attr, size, flags);
}

static long ll_add_rule(int ruleset_fd, const struct landlock_path_beneath_attr *attr)
{
    return syscall(__NR_landlock_add_rule, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, attr, 0);
}

static long ll_restrict_self(int ruleset_fd, __u32 flags)
{
    return syscall(__NR_landlock_restrict_self, ruleset_fd, flags);
}

/* The kernel documentation's best-effort table: drop what this ABI lacks. */
static void fit_to_abi(int abi, struct ruleset_attr *attr, __u32 *restrict_flags)
{
    switch (abi) {
    case 1: attr->handled_access_fs &= ~LANDLOCK_ACCESS_FS_REFER; /* fall through */
    case 2: attr->handled_access_fs &= ~LANDLOCK_ACCESS_FS_TRUNCATE; /* fall through */
    case 3:
    case 4: attr->handled_access_fs &= ~LANDLOCK_ACCESS_FS_IOCTL_DEV; /* fall through */
    case 5: attr->scoped = 0; /* fall through */
    case 6: *restrict_flags = 0; /* fall through */
    default: break;
    }
}

static int add_grant(int ruleset_fd, const char *root, const struct grant *g, __u64 handled, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    if (g->under_root)
        snprintf(path, sizeof(path), "%s/%s", strcmp(root, "/") == 0 ? "" : root, g->path);
    else
        snprintf(path, sizeof(path), "%s", g->path);
    cleanup_fd int fd = open(path, O_PATH | O_CLOEXEC | O_DIRECTORY);
    if (fd < 0) {
        if (errno == ENOENT) {
            /* nothing there to write to: the restriction only gets tighter */
            log_warn("landlock: %s does not exist, no rule for it", path);
            return 0;
        }
        snprintf(msg, msglen, "open %s: %s", path, strerror(errno));
        return -errno;
    }
    struct landlock_path_beneath_attr pb = {.allowed_access = g->access & handled, .parent_fd = fd};
    if (ll_add_rule(ruleset_fd, &pb) < 0) {
        snprintf(msg, msglen, "landlock_add_rule %s: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

int landlock_confine(const char *root, bool scoped, char *msg, size_t msglen)
{
    long abi = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0) {
        snprintf(msg, msglen, "%s", errno == ENOSYS ? "kernel built without Landlock (ENOSYS)"
                                    : errno == EOPNOTSUPP ? "Landlock disabled at boot (EOPNOTSUPP)"
                                                          : strerror(errno));
        return 1;
    }
    struct ruleset_attr attr = {
        .handled_access_fs = FS_ALL_ABI5,
        .scoped = scoped ? LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL : 0,
    };
    __u32 restrict_flags = LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON;
    fit_to_abi((int)abi, &attr, &restrict_flags);

    cleanup_fd int ruleset_fd = (int)ll_create_ruleset(&attr, sizeof(attr), 0);
    if (ruleset_fd < 0) {
        snprintf(msg, msglen, "landlock_create_ruleset: %s", strerror(errno));
        return -errno;
    }
    for (size_t i = 0; i < ARRAY_SIZE(grants); i++) {
        int r = add_grant(ruleset_fd, root, &grants[i], attr.handled_access_fs, msg, msglen);
        if (r < 0)
            return r;
    }
    /* No no_new_privs here: the agent holds CAP_SYS_ADMIN in its user
     * namespace, which landlock_restrict_self accepts instead; every child
     * sets no_new_privs itself before exec (proc.c). */
    if (ll_restrict_self(ruleset_fd, restrict_flags) < 0) {
        snprintf(msg, msglen, "landlock_restrict_self: %s", strerror(errno));
        return -errno;
    }
    snprintf(msg, msglen, "landlock ABI %ld: enforced (fs rights 0x%llx handled; writes beneath %s/{tmp,data,home/user} and /dev/shm; scoped:%s%s%s)",
             abi, (unsigned long long)attr.handled_access_fs, strcmp(root, "/") == 0 ? "" : root,
             attr.scoped & LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET ? " abstract-unix" : "",
             attr.scoped & LANDLOCK_SCOPE_SIGNAL ? " signal" : "", attr.scoped ? "" : " none");
    if (restrict_flags & LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON)
        snprintf(msg + strlen(msg), msglen - strlen(msg), ", denials audited while audit is on");
    return 0;
}
