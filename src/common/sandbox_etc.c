/* sandbox_etc.c - the generated /etc files (sandbox_etc.h says who uses them). */
#include "sandbox_etc.h"

const char sandbox_etc_passwd[] = "root:x:0:0:root:/root:/bin/bash\n"
                                  "user:x:1000:1000:user:/home/user:/bin/bash\n"
                                  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const char sandbox_etc_group[] = "root:x:0:\n"
                                 "tty:x:5:\n"
                                 "user:x:1000:\n"
                                 "nogroup:x:65534:\n";
/* hosts: dns too, with an empty resolv.conf: glibc then asks 127.0.0.1:53,
 * the sandbox's own loopback. Sealed and allow-list sandboxes have nothing
 * there (refused at once, nothing leaves); open egress has the daemon's
 * resolver there (docs/egress.md). */
const char sandbox_etc_nsswitch[] = "passwd: files\n"
                                    "group: files\n"
                                    "shadow: files\n"
                                    "hosts: files dns\n"
                                    "networks: files\n"
                                    "protocols: files\n"
                                    "services: files\n"
                                    "ethers: files\n"
                                    "rpc: files\n";
const char sandbox_etc_hosts_fmt[] = "127.0.0.1 localhost %s\n::1 localhost ip6-localhost ip6-loopback\n";
const char sandbox_etc_hostname_fmt[] = "%s\n";

const char *const sandbox_etc_host_files[] = {
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "matplotlibrc", "fonts", "mime.types",
    /* R reads its Renviron, ldpaths and Rprofile.site from /etc/R (via
     * /usr/lib/R/etc symlinks): language="r" */
    "R",
};
const char *const sandbox_proc_masked_files[] = {
    "proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug",
    "proc/kallsyms", "proc/modules", "proc/config.gz",
    /* host-wide tables and counters that list or count other tenants'
     * objects (docs/security.md, "Shared kernel objects") */
    "proc/locks", "proc/cgroups", "proc/key-users", "proc/sys/kernel/pty/nr", "proc/sys/fs/file-nr",
    "proc/sys/fs/inode-nr", "proc/sys/fs/inode-state", "proc/sys/fs/dentry-state", "proc/sys/fs/aio-nr", NULL,
};
/* pressure: the host's PSI, moved by every tenant's load */
const char *const sandbox_proc_masked_dirs[] = {"proc/acpi", "proc/asound", "proc/scsi", "proc/pressure", NULL};
const char *const sandbox_proc_read_only[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
                                              NULL};

const size_t sandbox_etc_n_host_files = sizeof(sandbox_etc_host_files) / sizeof(sandbox_etc_host_files[0]);
