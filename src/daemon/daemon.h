/* daemon.h - the one object airlockd passes around: configuration, the
 * store, the sandbox registry and the isolation backend. Created in main(),
 * handed to libmicrohttpd as the handler closure; no other global state. */
#ifndef AIRLOCK_DAEMON_H
#define AIRLOCK_DAEMON_H

#include <stdatomic.h>
#include <stdbool.h>

#include "backend.h"
#include "config.h"
#include "store.h"

#define AIRLOCK_VERSION "0.1.0"

struct registry;
struct admission;
struct pool;

struct bgwork;
struct templates;
struct egress_net;

struct daemon {
    struct config cfg;
    struct store *store;
    struct registry *reg;
    /* build.c calls it when an agent connection dies (the registry wakes its reaper) */
    void (*sandbox_crash_hook)(struct daemon *d);
    struct pool *pool;           /* warm sandboxes (pool.c); NULL: no pool */
    struct admission *adm;       /* per-key and per-address limits (admission.c) */
    struct bgwork *teardown;     /* deleted sandboxes released off the request path */
    const struct backend_ops *backend; /* jail: the default backend */
    void *backend_state;
    /* vm (src/vm/): NULL when it could not start here; vm_error says why */
    const struct backend_ops *vm_backend;
    void *vm_state;
    char vm_error[512];
    struct template_info host_template;
    struct templates *templates; /* built templates and builds (templates.c) */
    struct egress_net *egress_net; /* open egress's host side (egress_net.h); NULL: not served */
    unsigned nproc;              /* upper bound of `cpus` */
    atomic_bool shutting_down;   /* set on SIGTERM/SIGINT: new requests get 503 */
};

#endif
