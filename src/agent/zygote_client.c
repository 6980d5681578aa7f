/* zygote_client.c - ask airlock-zygote for this sandbox's Python REPL.
 *
 * With --zygote-fd the daemon gave us a SOCK_SEQPACKET whose other end it
 * handed to the zygote (a pre-imported Python on the host, zygote/main.c),
 * together with our pidfd and cgroups. A spawn is one message carrying the
 * REPL's pipe ends, exactly the fds proc_spawn would give an exec'd runner,
 * plus the write end of a report pipe. The zygote forks, its child joins
 * our cgroups and namespaces, forks the REPL (which the kernel then
 * reparents to us, PID 1) and the REPL runs proc.c's drop sequence, then
 * writes {0, its pid} into the report pipe. A failure anywhere on that path
 * is written there instead; a zygote that died closes the pipe.
 *
 * On any failure the caller execs the runner as before (repl.c). The
 * channel is then closed for good: a zygote that failed once is not trusted
 * to be quick the next time, and the reason is logged once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "util.h"
#include "zygote_proto.h"

/* A forked REPL is ready in a few ms (two forks of the zygote, the drop
 * sequence); this bounds a wedged or swamped zygote, after which the agent
 * execs the runner (~15 ms + imports) instead. */
#define ZYGOTE_SPAWN_TIMEOUT_MS 1000

_Static_assert(ZYG_SPAWN_FDS <= SEND_FDS_MAX, "send_with_fds carries at most SEND_FDS_MAX descriptors");

static int send_spawn(int sock, const struct zyg_spawn *msg, const int fds[ZYG_SPAWN_FDS])
{
    /* non-blocking: a zygote that does not read its queue is a failure,
     * not a reason for the agent to hang */
    return send_with_fds(sock, msg, sizeof(*msg), fds, ZYG_SPAWN_FDS, MSG_DONTWAIT);
}

void zygote_disable(struct agent *a, const char *why)
{
    if (a->zygote_fd < 0)
        return;
    log_warn("zygote: %s; the python runner is exec'd from now on", why);
    close(a->zygote_fd);
    a->zygote_fd = -1;
}

int zygote_spawn(struct agent *a, const int fds[5], pid_t *pid_out)
{
    if (a->zygote_fd < 0)
        return -ENOTCONN;
    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0) {
        int e = errno;
        char why[128];
        snprintf(why, sizeof(why), "pipe2 (report): %s", strerror(e));
        zygote_disable(a, why);
        return -e;
    }
    cleanup_fd int rd = rep[0];
    cleanup_fd int wr = rep[1];
    int all[ZYG_SPAWN_FDS] = {fds[0], fds[1], fds[2], fds[3], fds[4], wr};
    struct zyg_spawn msg = {.magic = ZYG_MAGIC_SPAWN, .data_limit = (uint64_t)a->policy.data_limit};
    int r = send_spawn(a->zygote_fd, &msg, all);
    char why[600];
    if (r < 0) {
        snprintf(why, sizeof(why), "send spawn request: %s", strerror(-r));
        zygote_disable(a, why);
        return r;
    }
    /* only the zygote's side may hold the write end now: EOF = it died */
    close(steal_fd(&wr));
    struct spawn_error se;
    pid_t pid;
    r = proc_await_ready(rd, ZYGOTE_SPAWN_TIMEOUT_MS, &pid, &se);
    if (r < 0) {
        snprintf(why, sizeof(why), "spawn failed: %s", se.msg);
        zygote_disable(a, why);
        return r;
    }
    *pid_out = pid;
    return 0;
}
