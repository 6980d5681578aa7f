/* zygote_proto.h - the messages of airlock-zygote's two kinds of socket.
 *
 * Both are AF_UNIX SOCK_SEQPACKET: one message is one record, fds travel
 * with it as SCM_RIGHTS, and EOF is a closed peer.
 *
 *   daemon -> zygote   struct zyg_register + fds [sandbox socket, agent pidfd,
 *                      one O_PATH fd per cgroup directory]
 *                      "this socket belongs to the sandbox whose PID 1 is
 *                      that pidfd, and its cgroups are these directories";
 *                      descriptors, not paths: the zygote never holds a
 *                      sandbox's id (its cgroup paths name it), so no
 *                      REPL forked from it can find one in its memory
 *   zygote -> daemon   struct zyg_ready, once, after the warm-up
 *   agent  -> zygote   struct zyg_spawn + fds [stdin, stdout, stderr, cmd,
 *                      res, report] (the REPL's ends, as proc.c would give
 *                      them to an exec'd runner, and a pipe for the report)
 *
 * The zygote never answers an agent on the socket: the outcome of a spawn
 * (proc.c's child_report: a failure, or the REPL's pid once it is confined)
 * comes through the report pipe, written by whichever process got that far.
 * What an agent sends is only a request to start its own sandbox's REPL:
 * which namespaces and cgroups that is, the zygote knows from the daemon.
 */
#ifndef AIRLOCK_ZYGOTE_PROTO_H
#define AIRLOCK_ZYGOTE_PROTO_H

#include <stdint.h>

#define ZYG_MAGIC_REGISTER 0x5a524547u /* "ZREG" */
#define ZYG_MAGIC_READY 0x5a524459u    /* "ZRDY" */
#define ZYG_MAGIC_SPAWN 0x5a53504eu    /* "ZSPN" */

#define ZYG_MAX_CGROUPS 4   /* cgroup v1: memory, pids, cpu, freezer; v2: one */
#define ZYG_SPAWN_FDS 6     /* stdin, stdout, stderr, cmd, res, report */
#define ZYG_REGISTER_FDS(ncgroups) (2 + (ncgroups)) /* socket, pidfd, cgroup dirs */

struct zyg_register {
    uint32_t magic;
    uint32_t ncgroups; /* as many cgroup directory fds follow the pidfd */
};

struct zyg_ready {
    uint32_t magic;
    uint32_t pid; /* the zygote's, for logs */
};

struct zyg_spawn {
    uint32_t magic;
    uint32_t pad;
    uint64_t data_limit; /* RLIMIT_DATA of the REPL (proc.c), the agent's policy */
};

#endif
