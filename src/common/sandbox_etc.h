/* sandbox_etc.h - the /etc every sandbox gets, whatever the backend.
 *
 * The jail builds it on the host side (src/jail/rootfs.c); the vm backend's
 * guest agent builds the same in guest RAM (src/agent/guest.c). One table,
 * so the two views of "who is user 1000" and "what names resolve" agree.
 */
#ifndef AIRLOCK_SANDBOX_ETC_H
#define AIRLOCK_SANDBOX_ETC_H

#include <stddef.h>

extern const char sandbox_etc_passwd[];
extern const char sandbox_etc_group[];
/* files only: there is no network to ask, and no daemon to ask it */
extern const char sandbox_etc_nsswitch[];
/* printf formats taking the hostname */
extern const char sandbox_etc_hosts_fmt[];
extern const char sandbox_etc_hostname_fmt[];

/* Host (or template) files programs in /usr expect, copied or overlaid when
 * present: the dynamic linker cache, Debian alternatives, matplotlib and
 * MIME configuration. */
extern const char *const sandbox_etc_host_files[];
extern const size_t sandbox_etc_n_host_files;

/* /proc as every sandbox sees it (Docker's MaskedPaths and ReadonlyPaths,
 * plus host-wide tables): files covered by /dev/null, directories by an
 * empty read-only tmpfs, paths made read-only; relative to the new root.
 * The jail's mnt.c says why each is there. NULL-terminated. */
extern const char *const sandbox_proc_masked_files[];
extern const char *const sandbox_proc_masked_dirs[];
extern const char *const sandbox_proc_read_only[];

#endif
