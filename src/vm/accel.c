/* accel.c - which accelerator a VMM runs on, and what TCG needs to know.
 *
 * `--vm-accel auto` prefers KVM, but /dev/kvm existing says little: a
 * nested or paravirtual KVM (PVM) may accept KVM_CREATE_VM and then never
 * get a stock kernel past its decompressor (docs/kernel-facts.md). So auto
 * boots the real guest once under KVM with a short deadline (vm.c,
 * resolve_accel) and falls back to TCG, saying why; a forced `kvm` that
 * fails the same probe is an error, never a hang.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int vm_accel_parse(const char *s, enum vm_accel *out)
{
    if (strcmp(s, "auto") == 0)
        *out = VM_ACCEL_AUTO;
    else if (strcmp(s, "kvm") == 0)
        *out = VM_ACCEL_KVM;
    else if (strcmp(s, "tcg") == 0)
        *out = VM_ACCEL_TCG;
    else
        return -EINVAL;
    return 0;
}

const char *vm_accel_name(enum vm_accel a)
{
    return a == VM_ACCEL_KVM ? "kvm" : a == VM_ACCEL_TCG ? "tcg" : "auto";
}

/* Under TCG the guest's TSC runs at the host's rate, and Debian's kernel
 * can hang calibrating it against a PIT microvm does not have
 * ("tsc: Unable to calibrate against PIT"): the guest is told the rate.
 * /proc/cpuinfo's "cpu MHz" is the TSC rate on the x86 hosts this runs on
 * (constant_tsc); 0 leaves the kernel to calibrate. */
unsigned vm_host_tsc_khz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned khz = 0;
    while (fgets(line, sizeof(line), f)) {
        double mhz;
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1 || sscanf(line, "cpu MHz\t: %lf", &mhz) == 1) {
            khz = (unsigned)(mhz * 1000.0 + 0.5);
            break;
        }
    }
    fclose(f);
    return khz;
}
