/* fuzz_agent.c - airlock-agent's side of the protocol: the real event loop
 * (src/agent/ev.c, ctl.c) reading a fuzzed control stream, with the FILE_*
 * requests (files.c, pathpolicy.c) working in a scratch root.
 *
 * Input layout:
 *   byte 0       n: the next n % 17 bytes are the split schedule (how the
 *                writer thread cuts the stream into writes)
 *   the rest     the control stream the daemon would send
 *
 * RUN_CODE and EXEC frames are retyped to an unknown type before the agent
 * sees them: they fork user processes, which at fuzzing rates would measure
 * the kernel, not the parser. Everything else runs as in a sandbox: HELLO,
 * SHUTDOWN, SIGNAL (with nothing running it must find nothing to signal),
 * FILE_PUT/GET/LIST/DELETE/MKDIR/DATA/ACK and ERROR, in any order and split.
 *
 * The oracle, besides ASan/UBSan: files.c may only change the writable
 * prefixes of the root (/tmp, /data, /home/user). The scratch directory is
 *
 *   <scratch>/outside/canary        a canary beside the root
 *   <scratch>/root/etc/passwd       read-only part of the sandbox
 *   <scratch>/root/{tmp,data,home/user}  writable, rebuilt for every input,
 *                                   with symlinks that point out of the root
 *                                   and into its read-only part
 *
 * and after every input the canary and the read-only part must be exactly as
 * they were: same names, same content, same owner and mode.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "fuzz.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define CANARY "canary: nothing may write here\n"
#define PASSWD "root:x:0:0:root:/root:/bin/sh\n"

static char scratch[PATH_MAX];
static char root[PATH_MAX];
static char outside[PATH_MAX];
static char *root_real;
static int root_fd = -1;

static void write_small(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    FUZZ_SETUP(fd >= 0, "create %s: %s", path, strerror(errno));
    FUZZ_SETUP(write_all(fd, text, strlen(text)) == 0, "write %s", path);
    close(fd);
}

static void make_dir(const char *path)
{
    FUZZ_SETUP(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

static void make_link(const char *target, const char *path)
{
    FUZZ_SETUP(symlink(target, path) == 0, "symlink %s -> %s: %s", path, target, strerror(errno));
}

static void path_join(char *out, const char *a, const char *b)
{
    FUZZ_SETUP((size_t)snprintf(out, PATH_MAX, "%s/%s", a, b) < PATH_MAX, "path too long: %s/%s", a, b);
}

/* The writable part of the root, as a fresh sandbox has it, plus the traps. */
static void reset_writable(void)
{
    static const char *const dirs[] = {"tmp", "data", "home/user"};
    char p[PATH_MAX], q[PATH_MAX];
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        path_join(p, root, dirs[i]);
        FUZZ_SETUP(fuzz_rm_rf(p) == 0, "rm -rf %s: %s", p, strerror(errno));
        make_dir(p);
    }
    path_join(p, root, "home/user/up");
    make_link("../../../outside", p); /* climbs above the root */
    path_join(p, root, "home/user/abs");
    make_link(outside, p); /* the canary's host path */
    path_join(p, root, "tmp/etc");
    make_link("/etc", p); /* inside the root: its read-only /etc */
    path_join(p, root, "data/dotdot");
    make_link("..", p);
    path_join(p, root, "data/loop");
    make_link("loop", p);
    path_join(p, root, "home/user/notes.txt");
    write_small(p, "hello\n", 0644);
    path_join(p, root, "home/user/dir");
    make_dir(p);
    path_join(q, p, "sub");
    make_dir(q);
    path_join(p, q, "deep.txt");
    write_small(p, "deep\n", 0600);
}

static void cleanup(void)
{
    if (scratch[0])
        (void)fuzz_rm_rf(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz_agent", (enum log_level)(LOG_LVL_ERROR + 1));
    umask(022); /* the oracle compares modes with what it created */
    char p[PATH_MAX];
    snprintf(scratch, sizeof(scratch), "%s/airlock-fuzz-agent-XXXXXX", fuzz_tmpdir());
    FUZZ_SETUP(mkdtemp(scratch), "mkdtemp %s: %s", scratch, strerror(errno));
    fuzz_scratch_register(scratch);
    atexit(cleanup);
    path_join(root, scratch, "root");
    path_join(outside, scratch, "outside");
    make_dir(outside);
    path_join(p, outside, "canary");
    write_small(p, CANARY, 0644);
    make_dir(root);
    path_join(p, root, "etc");
    make_dir(p);
    path_join(p, root, "etc/passwd");
    write_small(p, PASSWD, 0644);
    path_join(p, root, "home");
    make_dir(p);
    reset_writable();
    root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    FUZZ_SETUP(root_fd >= 0, "open %s: %s", root, strerror(errno));
    root_real = realpath(root, NULL);
    FUZZ_SETUP(root_real, "realpath %s: %s", root, strerror(errno));
    return 0;
}

/* ---- the oracle */

/* dir must hold exactly the names in want (NULL-terminated). */
static void check_names(const char *dir, const char *const *want)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL, "%s is gone: %s", dir, strerror(errno));
    size_t n = 0, nwant = 0;
    while (want[nwant])
        nwant++;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        bool known = false;
        for (size_t i = 0; i < nwant; i++)
            known = known || strcmp(de->d_name, want[i]) == 0;
        FUZZ_CHECK(known, "%s/%s appeared outside the writable prefixes", dir, de->d_name);
        n++;
    }
    closedir(d);
    FUZZ_CHECK(n == nwant, "%s lost an entry (%zu of %zu left)", dir, n, nwant);
}

static void check_file(const char *path, const char *content, mode_t mode)
{
    struct stat st;
    FUZZ_CHECK(lstat(path, &st) == 0, "%s is gone: %s", path, strerror(errno));
    FUZZ_CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode && st.st_uid == 0 && st.st_gid == 0,
               "%s changed type, mode or owner (mode %o uid %u)", path, st.st_mode, st.st_uid);
    char buf[256];
    FUZZ_CHECK(read_file_small(path, buf, sizeof(buf)) >= 0, "read %s", path);
    FUZZ_CHECK(strcmp(buf, content) == 0, "%s was rewritten: '%s'", path, buf);
}

static void check_dir(const char *path)
{
    struct stat st;
    FUZZ_CHECK(lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 && (st.st_mode & 07777) == 0755,
               "%s changed (mode %o uid %u)", path, st.st_mode, st.st_uid);
}

static void check_untouched(void)
{
    char p[PATH_MAX];
    check_names(outside, (const char *const[]){"canary", NULL});
    path_join(p, outside, "canary");
    check_file(p, CANARY, 0644);
    check_dir(root);
    check_names(root, (const char *const[]){"etc", "home", "tmp", "data", NULL});
    path_join(p, root, "etc");
    check_dir(p);
    check_names(p, (const char *const[]){"passwd", NULL});
    path_join(p, root, "etc/passwd");
    check_file(p, PASSWD, 0644);
    path_join(p, root, "home");
    check_dir(p);
    check_names(p, (const char *const[]){"user", NULL});
}

/* ---- one input */

/* Retype frames that would fork (RUN_CODE, EXEC) in a copy of the stream. */
static void defuse(uint8_t *s, size_t len)
{
    size_t off = 0;
    while (len - off >= PROTO_HDR_LEN) {
        struct proto_hdr h;
        if (proto_hdr_decode(s + off, &h) < 0)
            return; /* the agent stops reading here */
        /* the frames that start processes (a context's create and restart
         * start its runner) */
        if (h.type == PROTO_RUN_CODE || h.type == PROTO_EXEC || h.type == PROTO_CTX_CREATE || h.type == PROTO_CTX_RESTART)
            s[off + 5] = 0x1f; /* no such type: "unexpected frame type" */
        if (len - off - PROTO_HDR_LEN < h.len)
            return;
        off += PROTO_HDR_LEN + h.len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nsched = data[0] % 17;
    if (size < 1 + nsched)
        return 0;
    size_t len = size - 1 - nsched;
    uint8_t *stream = malloc(len ? len : 1);
    FUZZ_SETUP(stream, "out of memory");
    memcpy(stream, data + 1 + nsched, len);
    defuse(stream, len);

    int sv[2];
    FUZZ_SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s", strerror(errno));
    struct fuzz_writer *w = NULL;
    FUZZ_SETUP(fuzz_writer_start(sv[1], stream, len, data + 1, nsched, &w) == 0, "writer thread");

    struct agent a = {
        .ctl_fd = sv[0],
        .sig_fd = -1, /* nothing is spawned, so no SIGCHLD to watch */
        .meminfo_fd = -1, /* no /proc/meminfo of ours to rewrite */
        .memcg_usage_fd = -1,
        .memcg_stat_fd = -1,
        .root_fd = root_fd,
        .root_path = root,
        .root_real = root_real,
        .runner_path = "/nonexistent/airlock_runner.py",
        .python_path = "/nonexistent/python3",
    };
    context_table_init(&a);
    FUZZ_SETUP(ctl_start(&a) == 0, "ctl_start");
    (void)ev_run(&a); /* until EOF, a bad header, or SHUTDOWN */
    files_free_all(&a);
    watch_free_all(&a);
    context_free_all(&a);
    FUZZ_CHECK(a.jobs == NULL && a.repls[0].pid == 0 && !a.repls[1].used, "the agent spawned a process");
    close(sv[0]);
    fuzz_writer_join(w);
    close(sv[1]);
    free(stream);

    check_untouched();
    reset_writable();
    return 0;
}
