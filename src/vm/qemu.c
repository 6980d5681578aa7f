/* qemu.c - the QEMU command line of one sandbox.
 *
 * Machine `microvm` with nothing but what the sandbox needs, each device
 * named for why it is there:
 *
 *   -nodefaults -no-user-config   no default NIC, display, serial, USB,
 *                                 floppy, CD; no /etc/qemu config read
 *   isa-serial=off, -display none no console at all: the kernel logs to its
 *                                 ring buffer only (quiet)
 *   virtio-blk-device             the template's erofs image, read-only
 *                                 (an fd in an fdset: the VMM opens no path)
 *   virtio-serial-device + one    the agent's control stream; the chardev is
 *   virtserialport                a socket fd the daemon holds the other end of
 *   virtio-rng-device             entropy from the host (getrandom in the guest
 *                                 does not wait on a cold pool)
 *   -chardev ... -mon control     QMP on a second socket fd
 *   -sandbox on,...               QEMU's own seccomp filter: no obsolete
 *                                 calls, no privilege changes, no fork/exec,
 *                                 no scheduler/affinity/resource changes
 *
 * and no network device of any kind: a guest with egress off has no NIC to
 * route through (docs/vm.md). The kernel and initramfs come in as
 * /proc/self/fd paths of fds the daemon opened.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>

#include "util.h"

#define MAX_ARGS 64
#define ARG_BYTES 4096

struct argv_buf {
    char *argv[MAX_ARGS + 1];
    size_t n;
    char text[ARG_BYTES];
    size_t used;
    bool overflow;
};

static void add(struct argv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct argv_buf *b, const char *fmt, ...)
{
    if (b->overflow || b->n >= MAX_ARGS) {
        b->overflow = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(b->text + b->used, sizeof(b->text) - b->used, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(b->text) - b->used) {
        b->overflow = true;
        return;
    }
    b->argv[b->n++] = b->text + b->used;
    b->used += (size_t)len + 1;
}

int vm_qemu_argv(const struct vm_qemu_opts *o, char ***out)
{
    struct argv_buf *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    add(b, "%s", VM_QEMU);
    add(b, "-name");
    add(b, "airlock-vm,debug-threads=on");
    add(b, "-M");
    add(b, "microvm,isa-serial=off,rtc=on,pit=off,pic=off");
    add(b, "-accel");
    if (o->kvm)
        add(b, "kvm");
    else
        add(b, "tcg,tb-size=%u", VM_TCG_TB_MB);
    add(b, "-cpu");
    add(b, "%s", o->kvm ? "host" : "max");
    add(b, "-smp");
    add(b, "%u", o->vcpus ? o->vcpus : 1);
    add(b, "-m");
    add(b, "%uM", o->memory_mb);
    if (o->ram != VM_RAM_ANON) {
        /* a snapshot's RAM: shared while it is taken, a private mapping
         * (copy-on-write) of the sealed memfd in every restore (snapshot.c) */
        add(b, "-object");
        add(b, "memory-backend-file,id=ram0,size=%uM,mem-path=/proc/self/fd/%d,share=%s", o->memory_mb, VM_FD_RAM,
            o->ram == VM_RAM_PRIVATE ? "off" : "on");
        add(b, "-machine");
        add(b, "memory-backend=ram0");
    }
    if (o->ram == VM_RAM_PRIVATE || o->ram == VM_RAM_LOAD) { /* a restore: the state comes by QMP */
        add(b, "-incoming");
        add(b, "defer");
    }
    if (o->ram == VM_RAM_LOAD) /* a fork's loader: its guest must never run (fork.c) */
        add(b, "-S");
    add(b, "-nodefaults");
    add(b, "-no-user-config");
    add(b, "-display");
    add(b, "none");
    add(b, "-no-reboot");
    add(b, "-sandbox");
    add(b, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    add(b, "-kernel");
    add(b, "/proc/self/fd/%d", VM_FD_KERNEL);
    add(b, "-initrd");
    add(b, "/proc/self/fd/%d", VM_FD_INITRD);
    /* quiet: nobody reads a console; panic=-1 with -no-reboot makes a
     * guest panic end QEMU (the daemon sees the agent stream close) */
    char tsc[40] = "";
    if (o->tsc_khz)
        snprintf(tsc, sizeof(tsc), " tsc_early_khz=%u", o->tsc_khz);
    add(b, "-append");
    add(b, "quiet panic=-1 oops=panic%s airlock.scratch=%llu airlock.mem=%llu airlock.pids=%u airlock.hostname=%s",
        tsc, (unsigned long long)o->scratch_bytes, (unsigned long long)o->memory_mb << 20, o->pids,
        o->hostname ? o->hostname : "sandbox");
    add(b, "-add-fd");
    add(b, "fd=%d,set=1,opaque=root-image", VM_FD_IMAGE);
    add(b, "-drive");
    add(b, "id=root,file=/dev/fdset/1,format=raw,if=none,readonly=on");
    add(b, "-device");
    add(b, "virtio-blk-device,drive=root");
    add(b, "-device");
    add(b, "virtio-serial-device,max_ports=2");
    add(b, "-chardev");
    add(b, "socket,id=agent,fd=%d", VM_FD_AGENT);
    add(b, "-device");
    add(b, "virtserialport,chardev=agent,name=airlock.agent,nr=1");
    add(b, "-device");
    add(b, "virtio-rng-device");
    add(b, "-chardev");
    add(b, "socket,id=qmp,fd=%d", VM_FD_QMP);
    add(b, "-mon");
    add(b, "chardev=qmp,mode=control");
    if (b->overflow) {
        free(b);
        return -E2BIG;
    }
    b->argv[b->n] = NULL;
    /* argv is the struct's first member: freeing *out frees it all */
    *out = b->argv;
    return 0;
}
