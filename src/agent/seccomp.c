/* seccomp.c - the seccomp policy of user code: an allow-list.
 *
 * Every system call user code may make is listed below, grouped by purpose
 * with the reason it is there; anything else fails with ENOSYS, which is
 * what a program sees on a kernel too old for the call, so glibc and Python
 * fall back to older calls (clone3 -> clone, faccessat2 -> faccessat) or
 * report "Function not implemented" instead of crashing. The starting point
 * was Docker's default profile (moby profiles/seccomp/default.json), minus
 * what ANCHORS.md says to block and minus what only privileged or exotic
 * programs need (NUMA placement, fanotify, process_madvise, ...).
 *
 * Calls that are known to be dangerous are not just left out: they have an
 * explicit rule with their own errno (EPERM; EAFNOSUPPORT for socket
 * families; ENOSYS for clone3, whose flags seccomp cannot read), so the
 * errno tells "blocked on purpose" apart from "not in the list". The table
 * with the reason for each is what `airlock-agent --seccomp-policy` prints.
 *
 * Logging: proc.c loads the program with SECCOMP_FILTER_FLAG_LOG, so every
 * call that does not get ALLOW (errno or kill) is written to the kernel's
 * audit log (type=1326 SECCOMP records, with pid, comm, exe and syscall
 * number; dmesg shows them when no audit daemon runs), subject to
 * /proc/sys/kernel/seccomp/actions_logged. Allowed calls cost nothing extra.
 * One refusal is routine, not a reason to log: glibc tries clone3 for every
 * thread and posix_spawn before falling back to clone. Rules marked quiet
 * are also put in a second, tiny filter without FLAG_LOG that proc.c loads
 * after the main one: when filters tie on the action, the kernel takes the
 * most recently loaded one, whose flags say "do not log". That filter looks
 * at the syscall number only, so the kernel's action cache answers every
 * other call without running it.
 *
 * Only the native ABI is allowed: any other architecture (i386 via int 0x80)
 * and x32 syscall numbers (nr | 0x40000000) kill the process, because every
 * rule is keyed on x86_64 numbers and would not match the other ABI's.
 *
 * How libseccomp 2.5 combines rules (checked with a test program before this
 * was written; the tests in tests/agent pin the results):
 *   - an unconditional rule on a syscall silently REPLACES every conditional
 *     rule of that syscall, whatever the order they were added in, and a
 *     conditional ALLOW that always matches (mask 0) shadows ERRNO rules;
 *   - two comparisons of the same argument in one rule are refused (EINVAL);
 *   - a rule whose action equals the default action is refused (EACCES).
 * So an argument-filtered call gets ERRNO rules for the refused values and
 * ALLOW rules for exactly the complement (no overlap, no catch-all); a value
 * neither set covers would fall through to ENOSYS, never to ALLOW.
 *
 * Syscall numbers come from the kernel headers (__NR_*), not libseccomp's
 * name table, so calls newer than the library still resolve; the few newer
 * than Debian 12's headers are defined below. The policy is x86_64-only.
 */
#include <errno.h>
#include <linux/sched.h>
#include <stdbool.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/shm.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "agent.h"
#include "util.h"

#if !defined(__x86_64__)
#error "the seccomp policy lists x86_64 system calls"
#endif

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
/* Newer than linux-libc-dev 6.1 (Debian 12); these numbers are shared by
 * every architecture since 5.1's unified table. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_futex_wake
#define __NR_futex_wake 454
#endif
#ifndef __NR_futex_wait
#define __NR_futex_wait 455
#endif
#ifndef __NR_futex_requeue
#define __NR_futex_requeue 456
#endif
#ifndef __NR_mseal
#define __NR_mseal 462
#endif

/* What a rule does with its syscall. */
enum rule_kind {
    R_ALLOW,       /* any arguments */
    R_DENY,        /* every call fails with err */
    R_CLONE,       /* allowed unless arg0 has a namespace flag */
    R_UNSHARE,     /* same, CLONE_NEWTIME included */
    R_IOCTL,       /* allowed unless arg1's low 32 bits are TIOCSTI / TIOCLINUX */
    R_SOCKET,      /* allowed for AF_UNIX, AF_INET, AF_INET6 */
    R_SOCKETPAIR,  /* allowed for AF_UNIX */
    R_PERSONALITY, /* allowed for 0 (PER_LINUX) and 0xffffffff (query) */
    R_FADVISE,     /* allowed but POSIX_FADV_DONTNEED, which succeeds doing nothing */
    R_FLAGBIT,     /* allowed unless argument `arg` has the flag `bits` */
};

struct rule {
    int nr;
    const char *name;
    enum rule_kind kind;
    int err;    /* errno of the refused calls (not R_ALLOW) */
    bool quiet; /* R_DENY only: refused without an audit record */
    const char *why;
    unsigned arg;       /* R_FLAGBIT: which argument */
    unsigned long bits; /* R_FLAGBIT: the refused flag */
    const char *flag;   /* R_FLAGBIT: its name, for the table */
};

#define ALLOW(sys, why) {__NR_##sys, #sys, R_ALLOW, 0, false, why}
#define DENY(sys, err, why) {__NR_##sys, #sys, R_DENY, err, false, why}
#define DENY_QUIET(sys, err, why) {__NR_##sys, #sys, R_DENY, err, true, why}
#define FILTER(sys, kind, err, why) {__NR_##sys, #sys, kind, err, false, why}
#define FILTER_FLAG(sys, argn, flagbit, err, why) {__NR_##sys, #sys, R_FLAGBIT, err, false, why, argn, flagbit, #flagbit}

/* One reason per group of allowed calls. */
#define WHY_MEM "memory: malloc, mapped files, JIT code, shared memory"
#define WHY_MLOCK "locking pages; RLIMIT_MEMLOCK caps it at 64 KiB"
#define WHY_IO "reading and writing open files, pipes and sockets"
#define WHY_FD "managing file descriptors"
#define WHY_PATH "files and directories by path (Landlock and read-only mounts decide where)"
#define WHY_META "file metadata (ownership changes need capabilities the user lacks)"
#define WHY_XATTR "extended attributes (ls, cp -a, pip)"
#define WHY_WAIT "waiting for events: event loops, asyncio, select"
#define WHY_AIO "Linux AIO: io_setup's events come from fs.aio-max-nr, one pool for the whole host (io_setup(65536) took it all); ENOSYS, so libraries fall back to threads"
#define WHY_PAGECACHE "the page cache is shared by every sandbox and the host"
#define WHY_HUGETLB "the hugetlb pool (vm.nr_hugepages) is one per host and not charged to the memory cgroup: one sandbox could take every reserved huge page (transparent huge pages are unaffected)"
#define WHY_TIME "reading clocks, sleeping, timers"
#define WHY_PROC "processes: fork, exec, wait (subprocess, multiprocessing, shells)"
#define WHY_THREAD "threads and their synchronisation (glibc, Python, OpenBLAS)"
#define WHY_SCHED "scheduling hints and CPU affinity (numpy, multiprocessing.cpu_count)"
#define WHY_LIMITS "resource limits and usage of the process itself"
#define WHY_IDS "ids: without capabilities only among the ids already held"
#define WHY_SIG "signals within the sandbox (Landlock scopes them to it)"
#define WHY_SOCK "sockets of the allowed families (network reach is the jail's netns)"
#define WHY_IPC "System V and POSIX IPC, private to the sandbox's IPC namespace"
#define WHY_INFO "system information (uname, sysinfo, getrandom)"
#define WHY_SELF "restricting oneself further (only narrows what is allowed)"

static const struct rule rules[] = {
    /* ---- allowed ---------------------------------------------------------- */
    ALLOW(brk, WHY_MEM), ALLOW(munmap, WHY_MEM), ALLOW(mremap, WHY_MEM),
    ALLOW(mprotect, WHY_MEM), ALLOW(madvise, WHY_MEM), ALLOW(msync, WHY_MEM),
    ALLOW(mincore, "page residency of the caller's own mappings: for a file it cannot write the kernel (5.2+) reports only pages in the caller's page tables, never the shared page cache"),
    ALLOW(remap_file_pages, WHY_MEM), ALLOW(membarrier, WHY_MEM),
    ALLOW(pkey_alloc, WHY_MEM), ALLOW(pkey_free, WHY_MEM), ALLOW(pkey_mprotect, WHY_MEM),
    ALLOW(mseal, WHY_MEM),
    ALLOW(mlock, WHY_MLOCK), ALLOW(mlock2, WHY_MLOCK), ALLOW(munlock, WHY_MLOCK), ALLOW(mlockall, WHY_MLOCK),
    ALLOW(munlockall, WHY_MLOCK),

    ALLOW(read, WHY_IO), ALLOW(write, WHY_IO), ALLOW(readv, WHY_IO), ALLOW(writev, WHY_IO),
    ALLOW(pread64, WHY_IO), ALLOW(pwrite64, WHY_IO), ALLOW(preadv, WHY_IO), ALLOW(pwritev, WHY_IO),
    ALLOW(lseek, WHY_IO), ALLOW(sendfile, WHY_IO),
    ALLOW(splice, WHY_IO), ALLOW(tee, WHY_IO), ALLOW(vmsplice, WHY_IO), ALLOW(copy_file_range, WHY_IO),
    ALLOW(fsync, WHY_IO), ALLOW(fdatasync, WHY_IO), ALLOW(sync, WHY_IO), ALLOW(syncfs, WHY_IO),
    ALLOW(sync_file_range, WHY_IO), ALLOW(fallocate, WHY_IO),
    ALLOW(readahead, WHY_IO), ALLOW(ftruncate, WHY_IO),

    ALLOW(close, WHY_FD), ALLOW(close_range, WHY_FD), ALLOW(dup, WHY_FD), ALLOW(dup2, WHY_FD),
    ALLOW(dup3, WHY_FD), ALLOW(fcntl, WHY_FD), ALLOW(flock, WHY_FD), ALLOW(pipe, WHY_FD), ALLOW(pipe2, WHY_FD),

    ALLOW(open, WHY_PATH), ALLOW(openat, WHY_PATH), ALLOW(openat2, WHY_PATH), ALLOW(creat, WHY_PATH),
    ALLOW(stat, WHY_PATH), ALLOW(fstat, WHY_PATH), ALLOW(lstat, WHY_PATH), ALLOW(newfstatat, WHY_PATH),
    ALLOW(statx, WHY_PATH), ALLOW(statfs, WHY_PATH), ALLOW(fstatfs, WHY_PATH), ALLOW(access, WHY_PATH),
    ALLOW(faccessat, WHY_PATH), ALLOW(faccessat2, WHY_PATH), ALLOW(getcwd, WHY_PATH), ALLOW(chdir, WHY_PATH),
    ALLOW(fchdir, WHY_PATH), ALLOW(getdents, WHY_PATH), ALLOW(getdents64, WHY_PATH), ALLOW(mkdir, WHY_PATH),
    ALLOW(mkdirat, WHY_PATH), ALLOW(rmdir, WHY_PATH), ALLOW(rename, WHY_PATH), ALLOW(renameat, WHY_PATH),
    ALLOW(renameat2, WHY_PATH), ALLOW(link, WHY_PATH), ALLOW(linkat, WHY_PATH), ALLOW(unlink, WHY_PATH),
    ALLOW(unlinkat, WHY_PATH), ALLOW(symlink, WHY_PATH), ALLOW(symlinkat, WHY_PATH), ALLOW(readlink, WHY_PATH),
    ALLOW(readlinkat, WHY_PATH), ALLOW(truncate, WHY_PATH), ALLOW(inotify_init, WHY_PATH),
    ALLOW(inotify_init1, WHY_PATH), ALLOW(inotify_add_watch, WHY_PATH), ALLOW(inotify_rm_watch, WHY_PATH),
    ALLOW(mknod, "FIFOs and sockets (mkfifo); device nodes need CAP_MKNOD and every mount is nodev"),
    ALLOW(mknodat, "FIFOs and sockets (mkfifo); device nodes need CAP_MKNOD and every mount is nodev"),

    ALLOW(chmod, WHY_META), ALLOW(fchmod, WHY_META), ALLOW(fchmodat, WHY_META), ALLOW(fchmodat2, WHY_META),
    ALLOW(chown, WHY_META), ALLOW(fchown, WHY_META), ALLOW(lchown, WHY_META), ALLOW(fchownat, WHY_META),
    ALLOW(umask, WHY_META), ALLOW(utime, WHY_META), ALLOW(utimes, WHY_META), ALLOW(futimesat, WHY_META),
    ALLOW(utimensat, WHY_META),
    ALLOW(getxattr, WHY_XATTR), ALLOW(lgetxattr, WHY_XATTR), ALLOW(fgetxattr, WHY_XATTR),
    ALLOW(listxattr, WHY_XATTR), ALLOW(llistxattr, WHY_XATTR), ALLOW(flistxattr, WHY_XATTR),
    ALLOW(setxattr, WHY_XATTR), ALLOW(lsetxattr, WHY_XATTR), ALLOW(fsetxattr, WHY_XATTR),
    ALLOW(removexattr, WHY_XATTR), ALLOW(lremovexattr, WHY_XATTR), ALLOW(fremovexattr, WHY_XATTR),

    ALLOW(select, WHY_WAIT), ALLOW(pselect6, WHY_WAIT), ALLOW(poll, WHY_WAIT), ALLOW(ppoll, WHY_WAIT),
    ALLOW(epoll_create, WHY_WAIT), ALLOW(epoll_create1, WHY_WAIT), ALLOW(epoll_ctl, WHY_WAIT),
    ALLOW(epoll_wait, WHY_WAIT), ALLOW(epoll_pwait, WHY_WAIT), ALLOW(epoll_pwait2, WHY_WAIT),
    ALLOW(eventfd, WHY_WAIT), ALLOW(eventfd2, WHY_WAIT), ALLOW(signalfd, WHY_WAIT), ALLOW(signalfd4, WHY_WAIT),
    ALLOW(timerfd_create, WHY_WAIT), ALLOW(timerfd_settime, WHY_WAIT), ALLOW(timerfd_gettime, WHY_WAIT),

    ALLOW(nanosleep, WHY_TIME), ALLOW(clock_nanosleep, WHY_TIME), ALLOW(clock_gettime, WHY_TIME),
    ALLOW(clock_getres, WHY_TIME), ALLOW(gettimeofday, WHY_TIME), ALLOW(time, WHY_TIME), ALLOW(times, WHY_TIME),
    ALLOW(getitimer, WHY_TIME), ALLOW(setitimer, WHY_TIME), ALLOW(alarm, WHY_TIME), ALLOW(timer_create, WHY_TIME),
    ALLOW(timer_settime, WHY_TIME), ALLOW(timer_gettime, WHY_TIME), ALLOW(timer_getoverrun, WHY_TIME),
    ALLOW(timer_delete, WHY_TIME),

    ALLOW(fork, WHY_PROC), ALLOW(vfork, WHY_PROC), ALLOW(execve, WHY_PROC), ALLOW(execveat, WHY_PROC),
    ALLOW(exit, WHY_PROC), ALLOW(exit_group, WHY_PROC), ALLOW(wait4, WHY_PROC), ALLOW(waitid, WHY_PROC),
    ALLOW(getpid, WHY_PROC), ALLOW(getppid, WHY_PROC), ALLOW(gettid, WHY_PROC), ALLOW(getpgid, WHY_PROC),
    ALLOW(setpgid, WHY_PROC), ALLOW(getpgrp, WHY_PROC), ALLOW(getsid, WHY_PROC), ALLOW(setsid, WHY_PROC),
    ALLOW(pidfd_open, WHY_PROC), ALLOW(prctl, "process attributes: names, no_new_privs, dumpable (the privileged options check capabilities)"),
    ALLOW(arch_prctl, "thread-local storage (glibc sets FS at start)"),
    ALLOW(restart_syscall, "the kernel restarts interrupted sleeps with it"),
    ALLOW(set_tid_address, WHY_THREAD), ALLOW(set_robust_list, WHY_THREAD), ALLOW(get_robust_list, WHY_THREAD),
    ALLOW(futex, WHY_THREAD), ALLOW(futex_waitv, WHY_THREAD), ALLOW(futex_wake, WHY_THREAD),
    ALLOW(futex_wait, WHY_THREAD), ALLOW(futex_requeue, WHY_THREAD), ALLOW(rseq, WHY_THREAD),
    ALLOW(sched_yield, WHY_SCHED), ALLOW(sched_getaffinity, WHY_SCHED), ALLOW(sched_setaffinity, WHY_SCHED),
    ALLOW(sched_getparam, WHY_SCHED), ALLOW(sched_setparam, WHY_SCHED), ALLOW(sched_getscheduler, WHY_SCHED),
    ALLOW(sched_setscheduler, WHY_SCHED), ALLOW(sched_get_priority_max, WHY_SCHED),
    ALLOW(sched_get_priority_min, WHY_SCHED), ALLOW(sched_rr_get_interval, WHY_SCHED),
    ALLOW(sched_getattr, WHY_SCHED), ALLOW(sched_setattr, WHY_SCHED), ALLOW(getcpu, WHY_SCHED),
    ALLOW(getpriority, WHY_SCHED), ALLOW(setpriority, WHY_SCHED), ALLOW(ioprio_get, WHY_SCHED),
    ALLOW(ioprio_set, WHY_SCHED),
    ALLOW(getrlimit, WHY_LIMITS), ALLOW(setrlimit, WHY_LIMITS), ALLOW(prlimit64, WHY_LIMITS),
    ALLOW(getrusage, WHY_LIMITS),
    ALLOW(getuid, WHY_IDS), ALLOW(geteuid, WHY_IDS), ALLOW(getgid, WHY_IDS), ALLOW(getegid, WHY_IDS),
    ALLOW(getresuid, WHY_IDS), ALLOW(getresgid, WHY_IDS), ALLOW(getgroups, WHY_IDS), ALLOW(setuid, WHY_IDS),
    ALLOW(setgid, WHY_IDS), ALLOW(setreuid, WHY_IDS), ALLOW(setregid, WHY_IDS), ALLOW(setresuid, WHY_IDS),
    ALLOW(setresgid, WHY_IDS), ALLOW(setfsuid, WHY_IDS), ALLOW(setfsgid, WHY_IDS), ALLOW(setgroups, WHY_IDS),
    ALLOW(capget, WHY_IDS), ALLOW(capset, WHY_IDS),

    ALLOW(rt_sigaction, WHY_SIG), ALLOW(rt_sigprocmask, WHY_SIG), ALLOW(rt_sigreturn, WHY_SIG),
    ALLOW(rt_sigpending, WHY_SIG), ALLOW(rt_sigtimedwait, WHY_SIG), ALLOW(rt_sigsuspend, WHY_SIG),
    ALLOW(rt_sigqueueinfo, WHY_SIG), ALLOW(rt_tgsigqueueinfo, WHY_SIG), ALLOW(sigaltstack, WHY_SIG),
    ALLOW(kill, WHY_SIG), ALLOW(tkill, WHY_SIG), ALLOW(tgkill, WHY_SIG), ALLOW(pause, WHY_SIG),
    ALLOW(pidfd_send_signal, WHY_SIG),

    ALLOW(bind, WHY_SOCK), ALLOW(listen, WHY_SOCK), ALLOW(accept, WHY_SOCK), ALLOW(accept4, WHY_SOCK),
    ALLOW(connect, WHY_SOCK), ALLOW(getsockname, WHY_SOCK), ALLOW(getpeername, WHY_SOCK),
    ALLOW(setsockopt, WHY_SOCK), ALLOW(getsockopt, WHY_SOCK), ALLOW(sendto, WHY_SOCK), ALLOW(recvfrom, WHY_SOCK),
    ALLOW(sendmsg, WHY_SOCK), ALLOW(recvmsg, WHY_SOCK), ALLOW(sendmmsg, WHY_SOCK), ALLOW(recvmmsg, WHY_SOCK),
    ALLOW(shutdown, WHY_SOCK),

    ALLOW(shmat, WHY_IPC), ALLOW(shmdt, WHY_IPC), ALLOW(shmctl, WHY_IPC),
    ALLOW(semget, WHY_IPC), ALLOW(semop, WHY_IPC), ALLOW(semtimedop, WHY_IPC), ALLOW(semctl, WHY_IPC),
    ALLOW(msgget, WHY_IPC), ALLOW(msgsnd, WHY_IPC), ALLOW(msgrcv, WHY_IPC), ALLOW(msgctl, WHY_IPC),
    ALLOW(mq_open, WHY_IPC), ALLOW(mq_unlink, WHY_IPC), ALLOW(mq_timedsend, WHY_IPC),
    ALLOW(mq_timedreceive, WHY_IPC), ALLOW(mq_notify, WHY_IPC), ALLOW(mq_getsetattr, WHY_IPC),

    ALLOW(uname, WHY_INFO), ALLOW(sysinfo, WHY_INFO), ALLOW(getrandom, WHY_INFO),
    ALLOW(seccomp, WHY_SELF), ALLOW(landlock_create_ruleset, WHY_SELF), ALLOW(landlock_add_rule, WHY_SELF),
    ALLOW(landlock_restrict_self, WHY_SELF),

    /* ---- allowed with argument filters ---------------------------------- */
    FILTER(clone, R_CLONE, EPERM, "fork and threads yes; a CLONE_NEW* flag no: root in a new user namespace reaches netfilter and fs_context bugs (CVE-2022-0185, CVE-2024-1086)"),
    FILTER(unshare, R_UNSHARE, EPERM, "same for the running process (CLONE_FILES, CLONE_FS stay allowed)"),
    FILTER(ioctl, R_IOCTL, EPERM, "TIOCSTI injects input into a terminal, TIOCLINUX does console tricks; cmd compared as the 32 bits the kernel reads"),
    FILTER(socket, R_SOCKET, EAFNOSUPPORT, "AF_PACKET, AF_NETLINK, AF_VSOCK, AF_ALG...: raw kernel surface no sandbox needs"),
    FILTER(socketpair, R_SOCKETPAIR, EAFNOSUPPORT, "only AF_UNIX makes socket pairs anyway"),
    FILTER(fadvise64, R_FADVISE, 0, WHY_PAGECACHE ": DONTNEED would evict other tenants' and the host's pages (and clear bits another sandbox probes); it answers 0 and does nothing, as the hint it is"),
    FILTER_FLAG(preadv2, 5, RWF_NOWAIT, EOPNOTSUPP, WHY_PAGECACHE ": RWF_NOWAIT answers EAGAIN for an uncached page, a probe of what others read; EOPNOTSUPP is what a file without NOWAIT support gives"),
    FILTER_FLAG(pwritev2, 5, RWF_NOWAIT, EOPNOTSUPP, WHY_PAGECACHE ": the same flag on writes"),
    FILTER_FLAG(mmap, 3, MAP_HUGETLB, EPERM, WHY_HUGETLB),
    FILTER_FLAG(shmget, 2, SHM_HUGETLB, EPERM, WHY_HUGETLB),
    FILTER_FLAG(memfd_create, 1, MFD_HUGETLB, EPERM, WHY_HUGETLB),
    FILTER(personality, R_PERSONALITY, EPERM, "READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE weaken exploit defences; the query (0xffffffff) and PER_LINUX stay"),

    /* ---- refused on purpose (ANCHORS.md: Docker, flatpak, kCTF) ---------- */
    /* namespaces */
    DENY_QUIET(clone3, ENOSYS, "flags live in memory seccomp cannot read; ENOSYS makes glibc fall back to clone (not logged: glibc tries it for every thread)"),
    DENY(setns, EPERM, "joining other namespaces"),
    /* mounts: the sandbox's view of the filesystem is fixed by the jail */
    DENY(mount, EPERM, "remounts, binds, new filesystems"),
    DENY(umount2, EPERM, "uncovering what the jail mounted over"),
    DENY(fsopen, EPERM, "new mount API: filesystem context parsing (CVE-2022-0185)"),
    DENY(fsconfig, EPERM, "new mount API"),
    DENY(fsmount, EPERM, "new mount API"),
    DENY(fspick, EPERM, "new mount API: reconfigure an existing mount"),
    DENY(move_mount, EPERM, "new mount API"),
    DENY(open_tree, EPERM, "new mount API: clone mount trees"),
    DENY(mount_setattr, EPERM, "new mount API: flip ro/idmap attributes"),
    DENY(pivot_root, EPERM, "changing the root"),
    DENY(chroot, EPERM, "chroot games toward escapes"),
    DENY(quotactl, EPERM, "filesystem quotas are host policy"),
    DENY(quotactl_fd, EPERM, "filesystem quotas are host policy"),
    /* kernel subsystems with a long exploit history and no sandbox use */
    DENY(keyctl, EPERM, "keyrings are not namespaced"),
    DENY(add_key, EPERM, "keyrings"),
    DENY(request_key, EPERM, "keyrings"),
    DENY(bpf, EPERM, "verifier bugs"),
    DENY(perf_event_open, EPERM, "perf bugs and side channels"),
    DENY(userfaultfd, EPERM, "stalls kernel threads to widen race windows"),
    DENY(cachestat, EPERM, WHY_PAGECACHE ": it reports any readable file's cached pages"),
    DENY(io_setup, ENOSYS, WHY_AIO),
    DENY(io_destroy, ENOSYS, WHY_AIO),
    DENY(io_submit, ENOSYS, WHY_AIO),
    DENY(io_cancel, ENOSYS, WHY_AIO),
    DENY(io_getevents, ENOSYS, WHY_AIO),
    DENY(io_pgetevents, ENOSYS, WHY_AIO),
    DENY(io_uring_setup, EPERM, "most kCTF kernel exploits in 2022-23"),
    DENY(io_uring_enter, EPERM, "io_uring"),
    DENY(io_uring_register, EPERM, "io_uring"),
    /* looking into or controlling other processes */
    DENY(ptrace, EPERM, "would also bypass this filter on older kernels"),
    DENY(process_vm_readv, EPERM, "other processes' memory"),
    DENY(process_vm_writev, EPERM, "other processes' memory"),
    DENY(kcmp, EPERM, "kernel pointer ordering leaks"),
    DENY(pidfd_getfd, EPERM, "stealing fds from other processes"),
    DENY(open_by_handle_at, EPERM, "\"Shocker\": opens files outside the mount by handle"),
    DENY(name_to_handle_at, EPERM, "the other half of the handle API"),
    /* host-wide state a sandbox must never change */
    DENY(kexec_load, EPERM, "replacing the kernel"),
    DENY(kexec_file_load, EPERM, "replacing the kernel"),
    DENY(init_module, EPERM, "loading kernel code"),
    DENY(finit_module, EPERM, "loading kernel code"),
    DENY(delete_module, EPERM, "unloading kernel code"),
    DENY(acct, EPERM, "process accounting is global"),
    DENY(swapon, EPERM, "global"),
    DENY(swapoff, EPERM, "global"),
    DENY(reboot, EPERM, "in a pid namespace it kills the sandbox; still no reason"),
    DENY(iopl, EPERM, "raw port I/O"),
    DENY(ioperm, EPERM, "raw port I/O"),
    DENY(modify_ldt, EPERM, "16-bit segments: old exploit surface"),
    DENY(syslog, EPERM, "kernel log leaks addresses"),
    DENY(lookup_dcookie, EPERM, "oprofile leftover"),
    DENY(vhangup, EPERM, "hangs up terminals"),
    DENY(uselib, EPERM, "obsolete a.out loader"),
    DENY(settimeofday, EPERM, "the clock is global (no time namespace here)"),
    DENY(clock_settime, EPERM, "the clock is global"),
    DENY(clock_adjtime, EPERM, "the clock is global"),
    DENY(adjtimex, EPERM, "the clock is global"),
};

#define DEFAULT_ERRNO ENOSYS /* unlisted calls */

/* Namespace flags. Rules on the same action are ORed, so "any of these bits
 * set" is one masked compare per bit; "none set" is one compare. */
static const unsigned long ns_flags[] = {
    CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP,
    CLONE_NEWTIME, /* unshare only: in clone() 0x80 is part of the exit signal, never read as a flag */
};

static int add_ns_rules(scmp_filter_ctx ctx, const struct rule *r)
{
    size_t n = r->kind == R_UNSHARE ? ARRAY_SIZE(ns_flags) : ARRAY_SIZE(ns_flags) - 1;
    unsigned long all = 0;
    for (size_t i = 0; i < n; i++) {
        all |= ns_flags[i];
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        if (rc < 0)
            return rc;
    }
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, all, 0));
}

/* The kernel reads ioctl's cmd as 32 bits: only the low 32 bits are compared,
 * so garbage in the upper half cannot slip TIOCSTI past the filter. The
 * complement of {TIOCSTI, TIOCLINUX} is spelled out: a value differs from
 * both if one of the bits they share differs (one rule per shared bit), or if
 * it matches the shared bits and its other bits are neither value's (the
 * remaining combinations of the bits where the two differ). */
static int add_ioctl_rules(scmp_filter_ctx ctx, const struct rule *r)
{
    static const unsigned long denied[] = {TIOCSTI, TIOCLINUX};
    const unsigned long mask = 0xffffffffUL;
    const unsigned long differ = denied[0] ^ denied[1];
    const unsigned long shared = mask & ~differ;
    int rc;
    for (size_t i = 0; i < ARRAY_SIZE(denied); i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, mask, denied[i]))) < 0)
            return rc;
    for (unsigned b = 0; b < 32; b++) {
        unsigned long bit = 1UL << b;
        if ((shared & bit) &&
            (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, bit, ~denied[0] & bit))) < 0)
            return rc;
    }
    /* every subset of the differing bits (TIOCSTI 0x5412, TIOCLINUX 0x541C:
     * bits 1-3, so 8 values, 6 of them allowed) */
    for (unsigned long sub = differ;; sub = (sub - 1) & differ) {
        unsigned long v = (denied[0] & shared) | sub;
        if (v != denied[0] && v != denied[1] &&
            (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, mask, v))) < 0)
            return rc;
        if (sub == 0)
            break;
    }
    return 0;
}

/* socket(domain) and socketpair(domain), compared as 64-bit values: the
 * allowed families by value, the rest as the ranges between them. A domain
 * with upper bits set is above every allowed value, so it is refused (the
 * kernel would truncate it to an int). */
static int add_family_rules(scmp_filter_ctx ctx, const struct rule *r)
{
    static const unsigned long inet_families[] = {AF_UNIX, AF_INET, AF_INET6};
    static const unsigned long unix_only[] = {AF_UNIX};
    const unsigned long *ok = r->kind == R_SOCKET ? inet_families : unix_only;
    size_t n = r->kind == R_SOCKET ? ARRAY_SIZE(inet_families) : ARRAY_SIZE(unix_only);
    unsigned long next = 0; /* lowest value not yet covered */
    int rc;
    for (size_t i = 0; i < n; i++) {
        for (unsigned long v = next; v < ok[i]; v++)
            if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 1, SCMP_A0(SCMP_CMP_EQ, v))) < 0)
                return rc;
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A0(SCMP_CMP_EQ, ok[i]))) < 0)
            return rc;
        next = ok[i] + 1;
    }
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 1, SCMP_A0(SCMP_CMP_GE, next));
}

/* personality(p): allowed only for 0 (PER_LINUX) and 0xffffffff (query), as
 * the kernel sees them (32 bits). "The low 32 bits are neither all zeros nor
 * all ones" means some bit i is 1 while its cyclic neighbour i+1 is 0, so
 * one masked compare per neighbouring pair covers exactly the refused values. */
static int add_personality_rules(scmp_filter_ctx ctx, const struct rule *r)
{
    int rc;
    for (unsigned i = 0; i < 32; i++) {
        unsigned long bit = 1UL << i, next = 1UL << ((i + 1) % 32);
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit | next, bit))) < 0)
            return rc;
    }
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffUL, 0))) < 0)
        return rc;
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffUL, 0xffffffffUL));
}

/* fadvise64(fd, offset, len, advice): every advice by value but DONTNEED,
 * which gets ERRNO(0): seccomp returns 0 without running the call. Advice
 * with upper bits set matches none and falls to ENOSYS (the kernel would
 * have said EINVAL for any value but these). */
static int add_fadvise_rules(scmp_filter_ctx ctx, const struct rule *r)
{
    static const unsigned long ok[] = {POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL,
                                       POSIX_FADV_WILLNEED, POSIX_FADV_NOREUSE};
    int rc;
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A3(SCMP_CMP_EQ, ok[i]))) < 0)
            return rc;
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 1, SCMP_A3(SCMP_CMP_EQ, POSIX_FADV_DONTNEED));
}

/* The refused flag in argument r->arg, alone or with others, whatever the
 * other bits are; everything else is allowed. */
static int add_flagbit_rules(scmp_filter_ctx ctx, const struct rule *r)
{
    struct scmp_arg_cmp refused = {r->arg, SCMP_CMP_MASKED_EQ, r->bits, r->bits};
    struct scmp_arg_cmp allowed = {r->arg, SCMP_CMP_MASKED_EQ, r->bits, 0};
    int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 1, &refused);
    if (rc < 0)
        return rc;
    return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, 1, &allowed);
}

static int add_rule(scmp_filter_ctx ctx, const struct rule *r)
{
    switch (r->kind) {
    case R_ALLOW: return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
    case R_DENY:
        /* the default already gives this errno, and libseccomp refuses a
         * rule that repeats the default (EACCES): the entry documents it */
        if (r->err == DEFAULT_ERRNO)
            return 0;
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), r->nr, 0);
    case R_CLONE:
    case R_UNSHARE: return add_ns_rules(ctx, r);
    case R_IOCTL: return add_ioctl_rules(ctx, r);
    case R_SOCKET:
    case R_SOCKETPAIR: return add_family_rules(ctx, r);
    case R_PERSONALITY: return add_personality_rules(ctx, r);
    case R_FADVISE: return add_fadvise_rules(ctx, r);
    case R_FLAGBIT: return add_flagbit_rules(ctx, r);
    }
    return -EINVAL;
}

static const char *kind_action(enum rule_kind k)
{
    switch (k) {
    case R_ALLOW: return "allow";
    case R_DENY: return "deny";
    case R_CLONE:
    case R_UNSHARE: return "allow unless flags have CLONE_NEW*, else";
    case R_IOCTL: return "allow unless cmd is TIOCSTI/TIOCLINUX, else";
    case R_SOCKET: return "allow AF_UNIX/AF_INET/AF_INET6, else";
    case R_SOCKETPAIR: return "allow AF_UNIX, else";
    case R_PERSONALITY: return "allow 0 and 0xffffffff, else";
    case R_FADVISE: return "allow but POSIX_FADV_DONTNEED, which returns";
    case R_FLAGBIT: return "allow unless a flag is set, else";
    }
    return "?";
}

void seccomp_print_policy(FILE *f)
{
    fprintf(f, "# airlock-agent seccomp policy for user code (x86_64)\n"
               "# any other architecture or an x32 call number: the process is killed (SIGSYS)\n"
               "# any call not listed: %s (Function not implemented)\n"
               "# every refused call but the quiet ones is logged to the kernel audit log (SECCOMP_FILTER_FLAG_LOG)\n"
               "# name\taction\terrno\treason\n",
               strerrorname_np(DEFAULT_ERRNO));
    for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
        const struct rule *r = &rules[i];
        const char *action = kind_action(r->kind);
        char flagged[96];
        if (r->kind == R_FLAGBIT) {
            snprintf(flagged, sizeof(flagged), "allow unless arg%u has %s, else", r->arg, r->flag);
            action = flagged;
        }
        fprintf(f, "%s\t%s%s\t%s\t%s\n", r->name, action, r->quiet ? " quietly" : "",
                r->kind == R_ALLOW ? "-" : r->err == 0 ? "0" : strerrorname_np(r->err), r->why);
    }
}

static void release_ctx(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}

/* libseccomp 2.5 exports BPF only to an fd: a memfd, read back. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *prog, char *err, size_t errlen)
{
    cleanup_fd int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "memfd_create: %s", strerror(errno));
        return -errno;
    }
    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0) {
        snprintf(err, errlen, "seccomp_export_bpf: %s", strerror(-r));
        return r;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        snprintf(err, errlen, "seccomp_export_bpf: bad program size %lld", (long long)size);
        return -EINVAL;
    }
    struct sock_filter *insns = malloc((size_t)size);
    if (!insns) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (pread(fd, insns, (size_t)size, 0) != size) {
        snprintf(err, errlen, "read back seccomp program: %s", strerror(errno));
        free(insns);
        return -EIO;
    }
    prog->filter = insns;
    prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    return 0;
}

/* A context that kills foreign architectures and x32 calls. */
static scmp_filter_ctx new_ctx(uint32_t def_action, char *err, size_t errlen)
{
    scmp_filter_ctx ctx = seccomp_init(def_action);
    if (!ctx) {
        snprintf(err, errlen, "seccomp_init failed");
        return NULL;
    }
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (r < 0) {
        snprintf(err, errlen, "seccomp_attr_set ACT_BADARCH: %s", strerror(-r));
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

int seccomp_build_quiet_filter(struct sock_fprog *prog, char *err, size_t errlen)
{
    __attribute__((cleanup(release_ctx))) scmp_filter_ctx ctx = new_ctx(SCMP_ACT_ALLOW, err, errlen);
    if (!ctx)
        return -ENOMEM;
    for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
        if (!rules[i].quiet)
            continue;
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(rules[i].err), rules[i].nr, 0);
        if (r < 0) {
            snprintf(err, errlen, "quiet seccomp rule for %s: %s", rules[i].name, strerror(-r));
            return r;
        }
    }
    return export_bpf(ctx, prog, err, errlen);
}

int seccomp_build_user_filter(struct sock_fprog *prog, char *err, size_t errlen)
{
    __attribute__((cleanup(release_ctx))) scmp_filter_ctx ctx = new_ctx(SCMP_ACT_ERRNO(DEFAULT_ERRNO), err, errlen);
    if (!ctx)
        return -ENOMEM;
    int r;
    /* A binary search over syscall numbers instead of a linear chain of
     * ~270 compares. (Calls allowed whatever their arguments do not run the
     * program at all: the kernel works them out when the filter is loaded
     * and keeps a per-filter bitmap of them.) */
    r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (r < 0) {
        snprintf(err, errlen, "seccomp_attr_set CTL_OPTIMIZE: %s", strerror(-r));
        return r;
    }
    for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
        r = add_rule(ctx, &rules[i]);
        if (r < 0) {
            snprintf(err, errlen, "seccomp rule for %s: %s", rules[i].name, strerror(-r));
            return r;
        }
    }
    return export_bpf(ctx, prog, err, errlen);
}
