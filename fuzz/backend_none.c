/* backend_none.c - a backend that creates no sandboxes, for fuzz_http.
 *
 * The HTTP harness runs the real daemon (routes, auth, handlers, store) at
 * thousands of requests a second; making namespaces and cgroups at that rate
 * would fuzz the kernel, not the request handling. So create() refuses with
 * an error, which the daemon answers like any backend failure (500), and
 * every {id} route finds no live sandbox. This is a test backend for the HTTP
 * layer, not a stand-in for the kernel: nothing here pretends to isolate. */
#include <errno.h>
#include <stdio.h>

#include "backend.h"
#include "fuzz_http.h"
#include "util.h"

static int none_init(void **state, const struct backend_config *cfg UNUSED, char *err UNUSED,
                     size_t errlen UNUSED)
{
    *state = NULL;
    return 0;
}

static int none_create(void *state UNUSED, const struct sandbox_spec *spec UNUSED, struct backend_instance **inst,
                       int *agent_fd, char *err, size_t errlen)
{
    *inst = NULL;
    *agent_fd = -1;
    snprintf(err, errlen, "%s", FUZZ_NONE_CREATE_ERROR);
    return -ENOSYS;
}

static int none_destroy(void *state UNUSED, struct backend_instance *inst UNUSED) { return 0; }

static void none_fini(void *state UNUSED) {}

const struct backend_ops fuzz_none_backend_ops = {
    .name = "none",
    .init = none_init,
    .create = none_create,
    .destroy = none_destroy,
    .fini = none_fini,
};
