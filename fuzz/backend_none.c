/* backend_none.c - the sandbox backend of fuzz_http.
 *
 * The HTTP harness runs the real daemon (routes, auth, handlers, store) at
 * thousands of requests a second; making namespaces and cgroups at that rate
 * would fuzz the kernel, not the request handling. So create() refuses with
 * an error, which the daemon answers like any backend failure (500), and an
 * {id} route finds no live sandbox.
 *
 * The one exception is the harness's own live sandbox (struct fuzz_backend,
 * fuzz_http.h): while allow_create is set, create() makes a socketpair and
 * hands the "agent" end to the harness, whose scripted peer answers the
 * daemon's requests with frames from the fuzz input. Nothing here isolates
 * anything: it is a test backend for the daemon's side of the protocol and
 * the HTTP layer, not a stand-in for the kernel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"
#include "fuzz_http.h"
#include "util.h"

struct backend_instance {
    int unused;
};

static int none_init(void **state, const struct backend_config *cfg UNUSED, char *err UNUSED,
                     size_t errlen UNUSED)
{
    *state = NULL; /* the harness puts its struct fuzz_backend here */
    return 0;
}

static int none_create(void *state, const struct sandbox_spec *spec UNUSED, struct backend_instance **inst,
                       int *agent_fd, char *err, size_t errlen)
{
    struct fuzz_backend *fb = state;
    *inst = NULL;
    *agent_fd = -1;
    if (!fb || !atomic_load(&fb->allow_create)) {
        snprintf(err, errlen, "%s", FUZZ_NONE_CREATE_ERROR);
        return -ENOSYS;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        int r = -errno;
        snprintf(err, errlen, "socketpair: %s", strerror(-r));
        return r;
    }
    struct backend_instance *in = calloc(1, sizeof(*in));
    if (!in) {
        close(sv[0]);
        close(sv[1]);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = fb->attach(fb->ctx, sv[1]);
    if (r < 0) {
        close(sv[0]);
        free(in);
        snprintf(err, errlen, "start the scripted agent: %s", strerror(-r));
        return r;
    }
    *inst = in;
    *agent_fd = sv[0];
    return 0;
}

static int none_destroy(void *state UNUSED, struct backend_instance *inst)
{
    free(inst); /* the daemon closes its end; the peer sees EOF */
    return 0;
}

static void none_fini(void *state UNUSED) {}

const struct backend_ops fuzz_none_backend_ops = {
    .name = "none",
    .init = none_init,
    .create = none_create,
    .destroy = none_destroy,
    .fini = none_fini,
};
