/* seccomp.c - the baseline seccomp filter for user code.
 *
 * A deny-list with default ALLOW: user code is arbitrary Python, numpy,
 * compilers and shell tools, so an allow-list would break real work; what is
 * denied here is kernel attack surface that sandboxed code has no business
 * touching (the list follows Docker's default profile, flatpak and kCTF
 * findings; see /work/shared/ANCHORS.md). Denied calls fail with EPERM (or
 * the errno in the table) instead of killing the process, so programs that
 * probe for features degrade gracefully.
 *
 * Only the native ABI is allowed: any other architecture (i386 via int 0x80)
 * and x32 syscall numbers (nr | 0x40000000 on x86_64) kill the process,
 * because every rule below is keyed on native syscall numbers and would not
 * match the other ABI's numbers. libseccomp emits the x32 check for an
 * x86_64-only filter.
 *
 * Syscall numbers come from the kernel headers (__NR_*) rather than
 * libseccomp's name table, so calls newer than the library still resolve.
 */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "agent.h"
#include "util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* How a table entry restricts its syscall. */
enum deny_how {
    DENY_ALWAYS,       /* every call */
    DENY_CLONE_NS,     /* clone: any namespace flag in arg0 */
    DENY_UNSHARE_NS,   /* unshare: any namespace flag in arg0, CLONE_NEWTIME included */
    DENY_IOCTL_TTY,    /* ioctl: TIOCSTI / TIOCLINUX in arg1 (low 32 bits) */
    DENY_SOCKET_FAMILY,/* socket: families other than AF_UNIX/AF_INET/AF_INET6 */
    DENY_PERSONALITY,  /* personality: anything but 0 and the 0xffffffff query */
};

struct deny_rule {
    int nr;
    const char *name;
    enum deny_how how;
    int err;
};

#define DENY(sys, how, err) {__NR_##sys, #sys, how, err}

static const struct deny_rule deny_rules[] = {
    /* namespaces: root in a new user namespace reaches netfilter and
     * fs_context bugs (CVE-2022-0185, CVE-2024-1086) */
    DENY(clone, DENY_CLONE_NS, EPERM),           /* fork/threads fine, new namespaces not */
    DENY(unshare, DENY_UNSHARE_NS, EPERM),       /* same, for the running process */
    DENY(clone3, DENY_ALWAYS, ENOSYS),           /* flags live in memory seccomp cannot read; ENOSYS makes glibc fall back to clone */
    DENY(setns, DENY_ALWAYS, EPERM),             /* joining other namespaces */
    /* mounts: the sandbox's view of the filesystem is fixed by the jail */
    DENY(mount, DENY_ALWAYS, EPERM),             /* remounts, binds, new filesystems */
    DENY(umount2, DENY_ALWAYS, EPERM),           /* uncovering what the jail mounted over */
    DENY(fsopen, DENY_ALWAYS, EPERM),            /* new mount API: filesystem context parsing (CVE-2022-0185) */
    DENY(fsconfig, DENY_ALWAYS, EPERM),          /* new mount API */
    DENY(fsmount, DENY_ALWAYS, EPERM),           /* new mount API */
    DENY(fspick, DENY_ALWAYS, EPERM),            /* new mount API: reconfigure an existing mount */
    DENY(move_mount, DENY_ALWAYS, EPERM),        /* new mount API */
    DENY(open_tree, DENY_ALWAYS, EPERM),         /* new mount API: clone mount trees */
    DENY(mount_setattr, DENY_ALWAYS, EPERM),     /* new mount API: flip ro/idmap attributes */
    DENY(pivot_root, DENY_ALWAYS, EPERM),        /* changing the root */
    DENY(chroot, DENY_ALWAYS, EPERM),            /* chroot games toward escapes */
    /* kernel subsystems with a long exploit history and no sandbox use */
    DENY(keyctl, DENY_ALWAYS, EPERM),            /* keyrings are not namespaced */
    DENY(add_key, DENY_ALWAYS, EPERM),           /* keyrings */
    DENY(request_key, DENY_ALWAYS, EPERM),       /* keyrings */
    DENY(bpf, DENY_ALWAYS, EPERM),               /* verifier bugs */
    DENY(perf_event_open, DENY_ALWAYS, EPERM),   /* perf bugs and side channels */
    DENY(userfaultfd, DENY_ALWAYS, EPERM),       /* stalls kernel threads to widen race windows */
    DENY(io_uring_setup, DENY_ALWAYS, EPERM),    /* most kCTF kernel exploits in 2022-23 */
    DENY(io_uring_enter, DENY_ALWAYS, EPERM),    /* io_uring */
    DENY(io_uring_register, DENY_ALWAYS, EPERM), /* io_uring */
    /* looking into or controlling other processes */
    DENY(ptrace, DENY_ALWAYS, EPERM),            /* would also bypass this filter on older kernels */
    DENY(process_vm_readv, DENY_ALWAYS, EPERM),  /* other processes' memory */
    DENY(process_vm_writev, DENY_ALWAYS, EPERM), /* other processes' memory */
    DENY(kcmp, DENY_ALWAYS, EPERM),              /* kernel pointer ordering leaks */
    DENY(pidfd_getfd, DENY_ALWAYS, EPERM),       /* stealing fds from other processes */
    DENY(open_by_handle_at, DENY_ALWAYS, EPERM), /* "Shocker": opens files outside the mount by handle */
    DENY(name_to_handle_at, DENY_ALWAYS, EPERM), /* the other half of the handle API */
    /* host-wide state a sandbox must never change */
    DENY(kexec_load, DENY_ALWAYS, EPERM),        /* replacing the kernel */
    DENY(kexec_file_load, DENY_ALWAYS, EPERM),   /* replacing the kernel */
    DENY(init_module, DENY_ALWAYS, EPERM),       /* loading kernel code */
    DENY(finit_module, DENY_ALWAYS, EPERM),      /* loading kernel code */
    DENY(delete_module, DENY_ALWAYS, EPERM),     /* unloading kernel code */
    DENY(acct, DENY_ALWAYS, EPERM),              /* process accounting is global */
    DENY(swapon, DENY_ALWAYS, EPERM),            /* global */
    DENY(swapoff, DENY_ALWAYS, EPERM),           /* global */
    DENY(reboot, DENY_ALWAYS, EPERM),            /* in a pid namespace it kills the sandbox; still no reason */
    DENY(iopl, DENY_ALWAYS, EPERM),              /* raw port I/O */
    DENY(ioperm, DENY_ALWAYS, EPERM),            /* raw port I/O */
    DENY(modify_ldt, DENY_ALWAYS, EPERM),        /* 16-bit segments: old exploit surface */
    DENY(quotactl, DENY_ALWAYS, EPERM),          /* filesystem quotas are host policy */
    DENY(syslog, DENY_ALWAYS, EPERM),            /* kernel log leaks addresses */
    DENY(lookup_dcookie, DENY_ALWAYS, EPERM),    /* oprofile leftover */
    DENY(vhangup, DENY_ALWAYS, EPERM),           /* hangs up terminals */
    DENY(uselib, DENY_ALWAYS, EPERM),            /* obsolete a.out loader */
    DENY(settimeofday, DENY_ALWAYS, EPERM),      /* the clock is global (no time namespace here) */
    DENY(clock_settime, DENY_ALWAYS, EPERM),     /* the clock is global */
    DENY(clock_adjtime, DENY_ALWAYS, EPERM),     /* the clock is global */
    DENY(adjtimex, DENY_ALWAYS, EPERM),          /* the clock is global */
    /* argument-filtered calls */
    DENY(personality, DENY_PERSONALITY, EPERM),  /* READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE weaken exploit defences */
    DENY(ioctl, DENY_IOCTL_TTY, EPERM),          /* TIOCSTI injects input into a terminal; TIOCLINUX console tricks */
    DENY(socket, DENY_SOCKET_FAMILY, EAFNOSUPPORT), /* AF_PACKET, AF_NETLINK, AF_VSOCK, AF_ALG...: raw kernel surface */
};

/* Namespace flags checked one by one: libseccomp ORs rules with the same
 * action, so "any of these bits set" is one masked compare per bit. */
static const unsigned long ns_flags[] = {
    CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP,
};

static int add_ns_rules(scmp_filter_ctx ctx, const struct deny_rule *d)
{
    for (size_t i = 0; i < ARRAY_SIZE(ns_flags); i++) {
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->err), d->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        if (r < 0)
            return r;
    }
    /* CLONE_NEWTIME (0x80) lives inside clone()'s exit-signal byte, where
     * the kernel never reads it as a flag; unshare() does take it. */
    if (d->how == DENY_UNSHARE_NS)
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->err), d->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWTIME, CLONE_NEWTIME));
    return 0;
}

/* The kernel reads ioctl's cmd as 32 bits: compare the low 32 bits only, so
 * garbage in the upper half cannot slip TIOCSTI past the filter. */
static int add_ioctl_rules(scmp_filter_ctx ctx, const struct deny_rule *d)
{
    static const unsigned long cmds[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->err), d->nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, cmds[i]));
        if (r < 0)
            return r;
    }
    return 0;
}

/* socket(domain): allow AF_UNIX (1), AF_INET (2), AF_INET6 (10). libseccomp
 * cannot put two compares on one argument in a rule, so the complement is
 * spelled out: 0, 3..9 by value, and everything >= 11. A domain with upper
 * bits set is >= 11 as a 64-bit value and is refused too (the kernel would
 * truncate it to an int). */
static int add_socket_rules(scmp_filter_ctx ctx, const struct deny_rule *d)
{
    static const unsigned long denied[] = {AF_UNSPEC, 3, 4, 5, 6, 7, 8, 9};
    for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->err), d->nr, 1, SCMP_A0(SCMP_CMP_EQ, denied[i]));
        if (r < 0)
            return r;
    }
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->err), d->nr, 1, SCMP_A0(SCMP_CMP_GE, (unsigned long)AF_INET6 + 1));
}

/* personality(p): allow only 0 (PER_LINUX) and 0xffffffff (query), as the
 * kernel sees them (32 bits). "The low 32 bits are neither all zeros nor all
 * ones" means some bit i is 1 while its cyclic neighbour i+1 is 0, so one
 * masked compare per neighbouring pair covers exactly the denied values. */
static int add_personality_rules(scmp_filter_ctx ctx, const struct deny_rule *d)
{
    for (unsigned i = 0; i < 32; i++) {
        unsigned long bit = 1UL << i, next = 1UL << ((i + 1) % 32);
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->err), d->nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit | next, bit));
        if (r < 0)
            return r;
    }
    return 0;
}

static int add_rule(scmp_filter_ctx ctx, const struct deny_rule *d)
{
    switch (d->how) {
    case DENY_ALWAYS: return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(d->err), d->nr, 0);
    case DENY_CLONE_NS:
    case DENY_UNSHARE_NS: return add_ns_rules(ctx, d);
    case DENY_IOCTL_TTY: return add_ioctl_rules(ctx, d);
    case DENY_SOCKET_FAMILY: return add_socket_rules(ctx, d);
    case DENY_PERSONALITY: return add_personality_rules(ctx, d);
    }
    return -EINVAL;
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

int seccomp_build_user_filter(struct sock_fprog *prog, char *err, size_t errlen)
{
    __attribute__((cleanup(release_ctx))) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(err, errlen, "seccomp_init failed");
        return -ENOMEM;
    }
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (r < 0) {
        snprintf(err, errlen, "seccomp_attr_set ACT_BADARCH: %s", strerror(-r));
        return r;
    }
    for (size_t i = 0; i < ARRAY_SIZE(deny_rules); i++) {
        r = add_rule(ctx, &deny_rules[i]);
        if (r < 0) {
            snprintf(err, errlen, "seccomp rule for %s: %s", deny_rules[i].name, strerror(-r));
            return r;
        }
    }
    return export_bpf(ctx, prog, err, errlen);
}
