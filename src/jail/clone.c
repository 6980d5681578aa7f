/* clone.c - the clone itself: a child in new namespaces, on a stack of its own.
 *
 * CLONE_VM: until its execveat the child runs in the daemon's own address
 * space, on a stack of its own (struct clone_stack), like posix_spawn's
 * child. A fork-like clone copied the daemon's page tables on every create
 * and unmapped them again at exec, and the daemon's threads then took
 * copy-on-write faults: a cost that grew with the daemon's memory, which
 * grows with its live sandboxes (create 17 ms at 10 live, 97 ms at 1,000).
 * So the parent keeps the plan and the stack until the child has exec'd
 * or is dead, and closes its copies of the child's descriptors by the
 * numbers it saved before the clone (its descriptor table is not shared).
 * The one thing the two share that either writes is errno (the child has
 * the creating thread's TLS): the parent thread makes no failing call while
 * the child runs, except where it then kills the child anyway.
 *
 * Used by jail_create (the sandbox) and userns_probe (the start-up check).
 */
#include "jail.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

/* A sysctl's value for an error message: "" when the host does not have it. */
static void sysctl_text(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (read_file_small(path, buf, cap) < 0)
        buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

/* The clone runs with a non-root euid, so name the host settings that may
 * forbid it: user.max_user_namespaces (ENOSPC at 0 or when this uid's count
 * is reached) and Debian's kernel.unprivileged_userns_clone (EPERM at 0, for
 * a caller without CAP_SYS_ADMIN, which ours keeps). */
static int clone_error(int e, char *err, size_t errlen)
{
    if (e != ENOSPC && e != EPERM && e != EUSERS)
        return jail_err(err, errlen, -e, "clone");
    char max[32], unpriv[32];
    sysctl_text("/proc/sys/user/max_user_namespaces", max, sizeof(max));
    sysctl_text("/proc/sys/kernel/unprivileged_userns_clone", unpriv, sizeof(unpriv));
    return jail_err(err, errlen, -e,
                    "clone of a user namespace owned by an unprivileged uid (does the host allow user "
                    "namespaces? user.max_user_namespaces=%s%s%s)",
                    max[0] ? max : "?", unpriv[0] ? ", kernel.unprivileged_userns_clone=" : "", unpriv);
}

/* The child's stack: CLONE_VM shares the daemon's memory, so the child
 * cannot run on the creating thread's stack. 256 KiB (the child's deepest
 * frames hold a few path buffers), lazily backed, with a guard page below
 * it so an overflow faults instead of writing over daemon memory. */
#define JAIL_CHILD_STACK (256u << 10)

/* Under ASan the child's frames poison the stack's shadow, and a child
 * that execs or exits never unpoisons them; the next mmap may return the
 * same addresses, so the shadow is cleared when a stack is freed. */
#if defined(__SANITIZE_ADDRESS__)
#define JAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JAIL_ASAN 1
#endif
#endif
#ifdef JAIL_ASAN
#include <sanitizer/asan_interface.h>
#endif

int clone_stack_alloc(struct clone_stack *cs, char *err, size_t errlen)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    cs->len = JAIL_CHILD_STACK + page;
    cs->base = mmap(NULL, cs->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                    -1, 0);
    if (cs->base == MAP_FAILED)
        return jail_err(err, errlen, -errno, "mmap the sandbox init's stack");
    if (mprotect(cs->base, page, PROT_NONE) < 0) {
        int r = -errno;
        (void)munmap(cs->base, cs->len);
        cs->base = MAP_FAILED;
        return jail_err(err, errlen, r, "mprotect the stack guard page");
    }
    return 0;
}

/* Only once the child has exec'd or is dead. */
void clone_stack_free(struct clone_stack *cs)
{
    if (cs->base != MAP_FAILED && cs->base != NULL) {
#ifdef JAIL_ASAN
        __asan_unpoison_memory_region(cs->base, cs->len);
#endif
        (void)munmap(cs->base, cs->len);
    }
    cs->base = MAP_FAILED;
}

/* Clone into the new namespaces, sharing our memory (see the top of the
 * file), the child running fn(arg) on cs. All signals are blocked across
 * it so no daemon handler runs in the child before it resets them, nor in
 * this thread while it is not uid 0. CLONE_PIDFD: destroy signals through
 * the pidfd and can never hit a recycled pid. The thread is the sandbox's
 * host uid for the clone alone, so the new user namespace is owned by it
 * (userns.c says why); nothing between the switch and the return to 0
 * touches a file or needs to be root: the child's maps, cgroup and oom
 * score are written after it. */
pid_t clone_child(const struct jail_state *st, unsigned long flags, uid_t owner, int (*fn)(void *), void *arg,
                   struct clone_stack *cs, int *pidfd, char *err, size_t errlen)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct caps_saved_ids saved = {.dumpable = st->dumpable};
    int r = caps_become_owner(owner, &saved, err, errlen);
    if (r < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
    }
    /* the stack grows down: clone gets its top */
    int pid = clone(fn, (char *)cs->base + cs->len, (int)(flags | CLONE_VM | CLONE_PIDFD | SIGCHLD), arg, pidfd);
    int saved_errno = errno;
    caps_restore_root(&saved); /* aborts the daemon if it cannot */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return clone_error(saved_errno, err, errlen);
    return (pid_t)pid;
}
