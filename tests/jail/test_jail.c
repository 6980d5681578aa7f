/* test_jail.c - the jail backend against the real kernel (root, no mocks).
 *
 * usage: test_jail PROBE
 *
 * PROBE (tests/jail/probe.c, static) is exec'd in place of airlock-agent; it
 * answers line commands on its control stream. The driver asserts both what
 * the probe sees inside and what the host sees outside (uids, cgroup files,
 * leftovers). Output is TAP; exit status 1 if anything failed, 77 if not root.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mqueue.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/nsfs.h>

#include "backend.h"
#include "cgroup_impl.h"
#include "jail.h"
#include "log.h"
#include "util.h"

static int n_pass, n_fail, n_test;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", cond ? "ok" : "not ok", ++n_test);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (cond)
        n_pass++;
    else
        n_fail++;
}

static void *test_state;
static char runner_dir[64], runner_path[128];
static const struct template_info host_tmpl = {"host", NULL};

#define TEST_SCOPE "airlock-test" /* our own cgroup parent: never a live daemon's */
#define MEM_LIMIT (64ull << 20)
#define PIDS_LIMIT 48

static struct sandbox_spec make_spec(const char *id, const char *hostname)
{
    struct sandbox_spec s = {0};
    snprintf(s.id, sizeof(s.id), "%s", id);
    s.tmpl = &host_tmpl;
    s.memory_bytes = MEM_LIMIT;
    s.cpu_millis = 500;
    s.pids_max = PIDS_LIMIT;
    s.tmpfs_bytes = 16 << 20;
    s.runner_path = runner_path;
    s.hostname = hostname;
    return s;
}

/* ---- talking to the probe ----------------------------------------------------- */

struct reply {
    char text[8192];
};

/* Send a command and collect lines until "end". 0 or -errno. */
static int probe_cmd(int fd, const char *cmd, struct reply *r, int timeout_ms)
{
    char line[256];
    snprintf(line, sizeof(line), "%s\n", cmd);
    if (write_all(fd, line, strlen(line)) < 0)
        return -EPIPE;
    size_t len = 0;
    r->text[0] = '\0';
    uint64_t deadline = now_mono_ms() + (uint64_t)timeout_ms;
    while (!strstr(r->text, "end\n")) {
        uint64_t now = now_mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) <= 0)
            continue;
        ssize_t n = read(fd, r->text + len, sizeof(r->text) - 1 - len);
        if (n <= 0)
            return n == 0 ? -EPIPE : -errno;
        len += (size_t)n;
        r->text[len] = '\0';
    }
    return 0;
}

/* Value of "key=" in a reply, or "" (static buffer: one at a time). */
static const char *val(const struct reply *r, const char *key)
{
    static char v[1024];
    char pat[80];
    snprintf(pat, sizeof(pat), "%s=", key);
    v[0] = '\0';
    for (const char *p = r->text; (p = strstr(p, pat)) != NULL; p++) {
        if (p != r->text && p[-1] != '\n')
            continue;
        p += strlen(pat);
        size_t n = strcspn(p, "\n");
        if (n >= sizeof(v))
            n = sizeof(v) - 1;
        memcpy(v, p, n);
        v[n] = '\0';
        break;
    }
    return v;
}

static int ival(const struct reply *r, const char *key)
{
    const char *v = val(r, key);
    return *v ? atoi(v) : -9999;
}

/* ---- host-side views ------------------------------------------------------------ */

static long host_uid_of(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (read_file_small(path, buf, sizeof(buf)) < 0)
        return -1;
    const char *u = strstr(buf, "\nUid:");
    return u ? strtol(u + 5, NULL, 10) : -1;
}

/* The host uid that owns pid's user namespace (ioctl NS_GET_OWNER_UID). */
static long userns_owner_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
    cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC);
    uid_t owner = (uid_t)-1;
    if (fd < 0 || ioctl(fd, NS_GET_OWNER_UID, &owner) < 0)
        return -1;
    return (long)owner;
}

/* The creating thread lends its euid to the clone (caps.c, clone.c): afterwards the
 * test process, like the daemon, must be uid/gid 0 with every capability it
 * had, and as dumpable as before. */
static int dumpable_at_start;

static void check_creator_restored(const char *after)
{
    uid_t ru = 1, eu = 1, su = 1;
    gid_t rg = 1, eg = 1, sg = 1;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct c[2];
    memset(c, 0, sizeof(c));
    bool ids = getresuid(&ru, &eu, &su) == 0 && getresgid(&rg, &eg, &sg) == 0 && !ru && !eu && !su && !rg && !eg && !sg;
    bool caps = syscall(SYS_capget, &hdr, c) == 0 && c[0].effective == c[0].permitted &&
                c[1].effective == c[1].permitted && c[0].permitted != 0;
    ok(ids && caps, "after %s: creator back to uid/gid 0 (%u/%u/%u %u/%u/%u), effective caps = permitted (%x/%x)",
       after, (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg, (unsigned)sg, c[0].effective,
       c[0].permitted);
    int d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    ok(d == dumpable_at_start, "after %s: dumpable %d as at start (%d)", after, d, dumpable_at_start);
}

/* How many host processes live in the pid namespace named ns ("pid:[N]"). */
static int procs_in_pidns(const char *ns)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[64], link[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", atoi(de->d_name));
        ssize_t k = readlink(path, link, sizeof(link) - 1);
        if (k > 0) {
            link[k] = '\0';
            n += strcmp(link, ns) == 0;
        }
    }
    if (d)
        closedir(d);
    return n;
}

static int cg_read(struct backend_instance *inst, int i, const char *file, char *buf, size_t cap)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    if (cgroup_dir(&inst->cg, i, inst->id, dir, sizeof(dir)) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int r = read_file_small(path, buf, cap);
    if (r > 0 && buf[r - 1] == '\n')
        buf[r - 1] = '\0';
    return r;
}

static struct cgroup_ctx test_cg; /* the tree the tests' states own */

static bool cg_exists(const char *id)
{
    for (int i = 0; i < cgroup_count(test_cg.mode); i++) {
        char dir[PATH_MAX];
        struct stat st;
        if (cgroup_dir(&test_cg, i, id, dir, sizeof(dir)) >= 0 && stat(dir, &st) == 0)
            return true;
    }
    return false;
}

static bool pid_listed(const char *procs, pid_t pid)
{
    char want[32];
    snprintf(want, sizeof(want), "%d", (int)pid);
    for (const char *p = procs; *p;) {
        size_t n = strcspn(p, "\n");
        if (n == strlen(want) && strncmp(p, want, n) == 0)
            return true;
        p += n;
        if (*p)
            p++;
    }
    return false;
}

/* ---- the tests ------------------------------------------------------------------- */

static void test_inside(int fd, const char *hostname)
{
    struct reply r;
    int rc = probe_cmd(fd, "checks", &r, 20000);
    ok(rc == 0, "probe answers 'checks' (%d)", rc);
    if (rc < 0)
        return;
    ok(ival(&r, "pid") == 1, "agent is PID 1 of its pid namespace (pid=%s)", val(&r, "pid"));
    ok(ival(&r, "uid") == 0 && ival(&r, "gid") == 0, "uid/gid 0 inside");
    ok(ival(&r, "groups") == 0, "no supplementary groups (host gid 0 dropped), got %s", val(&r, "groups"));
    ok(strcmp(val(&r, "hostname"), hostname) == 0, "hostname is %s (%s)", hostname, val(&r, "hostname"));
    ok(strcmp(val(&r, "procpids"), "1") == 0, "/proc shows only the probe (%s)", val(&r, "procpids"));
    /* 0-3, the zygote's 4 when there is one, 5 /proc/meminfo's file, 6 and 7
     * the memory cgroup's usage and stat (src/jail/child.c), + the probe's own */
    ok(strcmp(val(&r, "fds"), "0,1,2,3,5,6,7,8") == 0 || strcmp(val(&r, "fds"), "0,1,2,3,4,5,6,7,8") == 0 ||
           strcmp(val(&r, "fds"), "0,1,2,3,5,6,7") == 0 || strcmp(val(&r, "fds"), "0,1,2,3,4,5,6,7") == 0,
       "only fds 0-7 (+probe's own) are open (%s)", val(&r, "fds"));
    ok(ival(&r, "mkdir_root") == EROFS, "/ is read-only (mkdir /x errno %s)", val(&r, "mkdir_root"));
    ok(ival(&r, "usr_create") == EROFS && ival(&r, "usr_ro") == 1, "/usr is read-only (%s)",
       val(&r, "usr_create"));
    ok(ival(&r, "etc_write") == EROFS, "/etc is read-only (%s)", val(&r, "etc_write"));
    const char *scratch[] = {"tmp", "data", "home", "shm"};
    for (size_t i = 0; i < ARRAY_SIZE(scratch); i++) {
        char k[32];
        snprintf(k, sizeof(k), "%s_tmpfs", scratch[i]);
        int is_tmpfs = ival(&r, k);
        snprintf(k, sizeof(k), "%s_write", scratch[i]);
        ok(is_tmpfs == 1 && ival(&r, k) == 0, "%s is a writable tmpfs (write errno %s)", scratch[i], val(&r, k));
    }
    ok(ival(&r, "data_uid") == 1000 && strcmp(val(&r, "data_mode"), "755") == 0, "/data owned by 1000, 0755");
    ok(ival(&r, "home_uid") == 1000, "/home/user owned by 1000");
    ok(strcmp(val(&r, "tmp_mode"), "1777") == 0, "/tmp is 1777 (%s)", val(&r, "tmp_mode"));
    ok(ival(&r, "sys") == 0 && ival(&r, "sys_fs") == ENOENT && ival(&r, "sys_ro") == 1 && ival(&r, "sys_online") == 0,
       "/sys is a read-only CPU list only: no /sys/fs (%s %s %s %s)", val(&r, "sys"), val(&r, "sys_fs"), val(&r, "sys_ro"),
       val(&r, "sys_online"));
    ok(ival(&r, "meminfo_write") == EROFS, "/proc/meminfo is read-only, root inside included (%s)", val(&r, "meminfo_write"));
    ok(ival(&r, "devnull") == 1 && ival(&r, "urandom") == 1, "/dev/null and /dev/urandom work");
    ok(ival(&r, "passwd_user") == 1 && ival(&r, "hosts") == 1, "/etc/passwd has user 1000, /etc/hosts localhost");
    ok(ival(&r, "os_release") == 1, "/etc/os-release names the distribution (libraries read it)");
    ok(access("/etc/localtime", R_OK) != 0 || ival(&r, "localtime") == 1, "/etc/localtime is the host's zone");
    ok(ival(&r, "resolv_size") == 0, "/etc/resolv.conf is empty");
    ok(ival(&r, "ldcache") == 1, "/etc/ld.so.cache is bound");
    ok(ival(&r, "runner") == 1 && ival(&r, "runner_ro") == 1 && ival(&r, "runner_write") != 0,
       "runner readable, on a read-only mount, open for write fails (%s)", val(&r, "runner_write"));
    ok(ival(&r, "cgroup_root") == 1, "cgroup namespace: own cgroup is /");
    ok(ival(&r, "tcp_ext") == ENETUNREACH, "TCP connect 1.1.1.1:53 -> ENETUNREACH (%s)", val(&r, "tcp_ext"));
    ok(ival(&r, "udp_ext") == ENETUNREACH, "UDP sendto 8.8.8.8:53 -> ENETUNREACH (%s)", val(&r, "udp_ext"));
    ok(ival(&r, "tcp_lo") == ECONNREFUSED, "127.0.0.1 closed port -> ECONNREFUSED, lo is up (%s)",
       val(&r, "tcp_lo"));
    ok(strcmp(val(&r, "ifaces"), "lo") == 0, "only interface is lo (%s)", val(&r, "ifaces"));
    ok(ival(&r, "proc_sys_write") == EROFS && ival(&r, "proc_sys_ro") == 1,
       "/proc/sys is read-only (net sysctl write errno %s)", val(&r, "proc_sys_write"));
    ok(ival(&r, "exe_write") != 0, "/proc/self/exe not writable (errno %s)", val(&r, "exe_write"));
    ok(ival(&r, "mknod") != 0, "mknod of a device fails (errno %s)", val(&r, "mknod"));
    ok(ival(&r, "sh_exit") == 7, "/bin/sh runs inside (exit %s)", val(&r, "sh_exit"));
    ok(ival(&r, "py_exit") == 5, "python3 runs inside (exit %s)", val(&r, "py_exit"));
}

/* Is flag one of the comma-separated options? */
static bool has_opt(const char *opts, const char *flag)
{
    char padded[512], want[32];
    snprintf(padded, sizeof(padded), ",%s,", opts);
    snprintf(want, sizeof(want), ",%s,", flag);
    return strstr(padded, want) != NULL;
}

static void test_mounts(int fd)
{
    struct reply r;
    int rc = probe_cmd(fd, "mounts", &r, 60000);
    ok(rc == 0 && val(&r, "mnt/")[0], "probe answers 'mounts' (%d)", rc);
    if (rc < 0 || !val(&r, "mnt/")[0])
        return;
    /* mount point, then the flags it must have and must not have */
    static const struct {
        const char *point;
        const char *with[4];
        const char *without[2];
    } want[] = {
        {"/", {"ro", "nosuid", "nodev", "noexec"}, {NULL}},
        {"/usr", {"ro", "nosuid", "nodev"}, {"noexec"}},
        {"/etc", {"ro", "nosuid", "nodev", "noexec"}, {NULL}},
        {"/tmp", {"rw", "nosuid", "nodev"}, {"noexec"}},
        {"/home/user", {"rw", "nosuid", "nodev"}, {"noexec"}},
        {"/data", {"rw", "nosuid", "nodev", "noexec"}, {NULL}},
        {"/dev/shm", {"rw", "nosuid", "nodev", "noexec"}, {NULL}},
        {"/dev", {"ro", "nosuid", "noexec"}, {"nodev"}},
        {"/dev/pts", {"nosuid", "noexec"}, {NULL}},
        {"/proc", {"nosuid", "nodev", "noexec"}, {NULL}},
        {"/proc/sys", {"ro", "nosuid", "nodev", "noexec"}, {NULL}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        char key[160];
        snprintf(key, sizeof(key), "mnt%s", want[i].point);
        const char *opts = val(&r, key);
        bool good = strcmp(opts, "none") != 0;
        for (size_t j = 0; j < ARRAY_SIZE(want[i].with) && want[i].with[j]; j++)
            good = good && has_opt(opts, want[i].with[j]);
        for (size_t j = 0; j < ARRAY_SIZE(want[i].without) && want[i].without[j]; j++)
            good = good && !has_opt(opts, want[i].without[j]);
        ok(good, "mount flags of %s (%s)", want[i].point, opts);
    }
    ok(val(&r, "no_nosuid")[0] == '\0', "every mount is nosuid (without: %s)", val(&r, "no_nosuid"));
    /* Files every sandbox opens are the sandbox's own inodes (a lock or a
     * watch on a shared inode crosses sandboxes), on a device other than
     * the host file's; a device node keeps the host's numbers. */
    static const char *const shared[][2] = {{"/usr/bin/python3", "/usr/bin/python3"},
                                            {"/usr/lib", "/usr/lib"},
                                            {"/etc/ld.so.cache", "/etc/ld.so.cache"},
                                            {"/etc/alternatives", "/etc/alternatives"},
                                            {"/opt/airlock/airlock_runner.py", NULL},
                                            {"/dev/null", "/dev/null"},
                                            {"/dev/tty", "/dev/tty"}};
    for (size_t i = 0; i < ARRAY_SIZE(shared); i++) {
        char key[160];
        snprintf(key, sizeof(key), "inode%s", shared[i][0]);
        unsigned long long dev = 0, ino = 0, rdev = 0;
        bool seen = sscanf(val(&r, key), "%llu:%llu:%llu", &dev, &ino, &rdev) == 3;
        struct stat host;
        const char *hp = shared[i][1] ? shared[i][1] : runner_path;
        bool own = seen && (!hp || stat(hp, &host) < 0 || (unsigned long long)host.st_dev != dev);
        bool same_node = !seen || !hp || stat(hp, &host) < 0 || !S_ISCHR(host.st_mode) ||
                         (unsigned long long)host.st_rdev == rdev;
        ok(own && same_node, "%s is the sandbox's own inode (inside %s)", shared[i][0], val(&r, key));
    }
    /* nodev may be missing only where device nodes live: /dev and its
     * binds, and the /proc files masked by binds of /dev/null */
    char nodev[1024];
    snprintf(nodev, sizeof(nodev), "%s", val(&r, "no_nodev"));
    bool only_dev = true;
    for (char *m = strtok(nodev, " "); m; m = strtok(NULL, " "))
        only_dev = only_dev && (strcmp(m, "/dev") == 0 || strncmp(m, "/dev/", 5) == 0 || strncmp(m, "/proc/", 6) == 0);
    ok(only_dev, "every mount but the device ones is nodev (without: %s)", val(&r, "no_nodev"));
    ok(ival(&r, "exec_tmp") == 0 && ival(&r, "exec_home") == 0, "a binary runs from /tmp and /home/user (%s, %s)",
       val(&r, "exec_tmp"), val(&r, "exec_home"));
    ok(ival(&r, "exec_data") == EACCES && ival(&r, "exec_shm") == EACCES,
       "the same binary from /data and /dev/shm: EACCES (noexec) (%s, %s)", val(&r, "exec_data"), val(&r, "exec_shm"));
    ok(ival(&r, "gcc_tmp") == 3, "gcc compiles and runs a program in /tmp (exit %s)", val(&r, "gcc_tmp"));
    ok(ival(&r, "so_home") == 42, "a .so built into ~/.local loads (ctypes, exit %s)", val(&r, "so_home"));
    ok(ival(&r, "so_data") == 7, "the same .so from /data fails to map (exit %s)", val(&r, "so_data"));
    /* A absent on this kernel, C masked by /dev/null, F the real file */
    const char *m = val(&r, "proc_masked_files");
    ok(strlen(m) == 18 && !strchr(m, 'F') && strchr(m, 'C'),
       "kcore keys latency_stats timer_list timer_stats sched_debug kallsyms modules config.gz, and the host-wide "
       "locks cgroups key-users pty/nr file-nr inode-nr inode-state dentry-state aio-nr masked or absent (%s)", m);
    m = val(&r, "proc_masked_dirs");
    ok(strlen(m) == 4 && !strchr(m, 'D'), "acpi asound scsi pressure: empty read-only or absent (%s)", m);
    m = val(&r, "proc_read_only");
    ok(strlen(m) == 5 && !strchr(m, 'W') && m[3] == 'R', "bus fs irq sys sysrq-trigger read-only or absent (%s)", m);
}

static void test_host_view(struct backend_instance *inst)
{
    pid_t pid = jail_backend_ops.agent_pid(inst);
    long uid = host_uid_of(pid);
    ok(uid == (long)inst->host_base && uid >= JAIL_UID_BASE, "host uid of the agent is host_base %u (%ld)",
       (unsigned)inst->host_base, uid);
    long owner = userns_owner_of(pid);
    ok(owner == (long)inst->host_base, "its user namespace is owned by host_base %u, not root (%ld)",
       (unsigned)inst->host_base, owner);
    check_creator_restored("create");
    char buf[256], path[64];
    snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)pid);
    read_file_small(path, buf, sizeof(buf));
    buf[strcspn(buf, "\n")] = '\0';
    if (((struct jail_state *)test_state)->protect_agent)
        ok(atoi(buf) == -1000, "agent oom_score_adj -1000 (%s)", buf);
    else
        ok(atoi(buf) <= 0, "agent oom_score_adj not raised (%s) # no CAP_SYS_RESOURCE here: -1000 impossible", buf);

    char procs[4096];
    for (int i = 0; i < cgroup_count(inst->cg.mode); i++) {
        cg_read(inst, i, "cgroup.procs", procs, sizeof(procs));
        ok(pid_listed(procs, pid), "agent is in cgroup hierarchy %d", i);
    }
    if (inst->cg.mode == CGROUP_V1) {
        cg_read(inst, 0, "memory.limit_in_bytes", buf, sizeof(buf));
        ok(strtoull(buf, NULL, 10) == MEM_LIMIT, "memory.limit_in_bytes = %llu (%s)", MEM_LIMIT, buf);
        cg_read(inst, 0, "memory.memsw.limit_in_bytes", buf, sizeof(buf));
        ok(strtoull(buf, NULL, 10) == MEM_LIMIT, "memory.memsw.limit_in_bytes = memory limit (%s)", buf);
        cg_read(inst, 1, "pids.max", buf, sizeof(buf));
        ok(atoi(buf) == PIDS_LIMIT, "pids.max = %d (%s)", PIDS_LIMIT, buf);
        cg_read(inst, 2, "cpu.cfs_quota_us", buf, sizeof(buf));
        ok(atoi(buf) == 50000, "cpu.cfs_quota_us = 50000 (%s)", buf);
        cg_read(inst, 2, "cpu.cfs_period_us", buf, sizeof(buf));
        ok(atoi(buf) == 100000, "cpu.cfs_period_us = 100000 (%s)", buf);
    } else {
        cg_read(inst, 0, "memory.max", buf, sizeof(buf));
        ok(strtoull(buf, NULL, 10) == MEM_LIMIT, "memory.max (%s)", buf);
        cg_read(inst, 0, "pids.max", buf, sizeof(buf));
        ok(atoi(buf) == PIDS_LIMIT, "pids.max (%s)", buf);
        cg_read(inst, 0, "cpu.max", buf, sizeof(buf));
        ok(strcmp(buf, "50000 100000") == 0, "cpu.max (%s)", buf);
        cg_read(inst, 0, "memory.oom.group", buf, sizeof(buf));
        ok(atoi(buf) == 0, "memory.oom.group 0 (%s)", buf);
    }
}

static void test_limits(struct backend_instance *inst, int fd)
{
    uint64_t before = 0, after = 0;
    int rc = jail_backend_ops.oom_kills(inst, &before);
    ok(rc == 0, "oom_kills readable (%d, count %llu)", rc, (unsigned long long)before);
    struct reply r;
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "oom %llu", 2 * MEM_LIMIT);
    rc = probe_cmd(fd, cmd, &r, 30000);
    ok(rc == 0 && strcmp(val(&r, "status"), "signal9") == 0, "child touching 2x memory limit is SIGKILLed (%s)",
       val(&r, "status"));
    jail_backend_ops.oom_kills(inst, &after);
    ok(after > before, "oom_kills incremented (%llu -> %llu)", (unsigned long long)before,
       (unsigned long long)after);
    rc = probe_cmd(fd, "ping", &r, 5000);
    ok(rc == 0 && ival(&r, "pong") == 1, "agent (PID 1) survived the OOM");

    rc = probe_cmd(fd, "forkbomb", &r, 30000);
    ok(rc == 0 && ival(&r, "fork_errno") == EAGAIN && ival(&r, "forks") < PIDS_LIMIT,
       "fork bomb stops at pids.max with EAGAIN (errno %s after %s forks)", val(&r, "fork_errno"),
       val(&r, "forks"));
    rc = probe_cmd(fd, "ping", &r, 5000);
    ok(rc == 0, "agent alive after the fork bomb");
}

static void test_destroy_clean(void *state, struct backend_instance *inst, int fd)
{
    struct reply r;
    probe_cmd(fd, "spawn", &r, 5000);
    ok(ival(&r, "pid") > 1, "probe left a sleeping child (pid %s)", val(&r, "pid"));
    char id[SANDBOX_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", inst->id);
    char path[64], ns[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)inst->pid);
    ssize_t k = readlink(path, ns, sizeof(ns) - 1);
    ns[k > 0 ? k : 0] = '\0';
    ok(procs_in_pidns(ns) == 2,
       "host sees the sandbox's 2 processes in its pid namespace %s", ns);
    uint64_t t0 = now_mono_ms();
    int rc = jail_backend_ops.destroy(state, inst);
    ok(rc == 0, "destroy returns 0 (%d) in %llu ms", rc, (unsigned long long)(now_mono_ms() - t0));
    ok(!cg_exists(id), "no cgroup directories left for %s", id);
    ok(procs_in_pidns(ns) == 0, "no processes left in pid namespace %s", ns);
    char c;
    ok(read(fd, &c, 1) == 0, "control stream reads EOF after destroy");
    close(fd);
}

struct sandbox {
    struct backend_instance *inst;
    int fd;
};

static int create(void *state, const char *id, const char *host, struct sandbox *sb, char *err, size_t errlen)
{
    struct sandbox_spec spec = make_spec(id, host);
    return jail_backend_ops.create(state, &spec, &sb->inst, &sb->fd, err, errlen);
}

/* Per-user kernel counters are charged up to each user namespace's owner:
 * one sandbox holding every inotify instance it may have must leave the
 * other sandbox and root on the host theirs. With root owning every
 * sandbox's namespace, all three shared root's one counter. */
static void test_own_counters(struct sandbox *a, struct sandbox *b)
{
    char buf[32] = "";
    read_file_small("/proc/sys/user/max_inotify_instances", buf, sizeof(buf));
    long max = strtol(buf, NULL, 10);
    if (max <= 0 || max > 2000) {
        ok(1, "# SKIP user.max_inotify_instances is %ld: too many to hold in a test", max);
        return;
    }
    struct reply r;
    probe_cmd(a->fd, "inotify_hold", &r, 10000);
    ok(ival(&r, "inotify_held") == max && ival(&r, "inotify_errno") == EMFILE,
       "a holds all %ld inotify instances of its own counter (%d, then errno %d)", max, ival(&r, "inotify_held"),
       ival(&r, "inotify_errno"));
    probe_cmd(b->fd, "inotify_one", &r, 5000);
    ok(ival(&r, "inotify_err") == 0, "meanwhile b gets an inotify instance (errno %s)", val(&r, "inotify_err"));
    int fd = inotify_init1(IN_CLOEXEC);
    ok(fd >= 0, "meanwhile root on the host gets one (%s)", fd < 0 ? strerror(errno) : "ok");
    if (fd >= 0)
        close(fd);
    probe_cmd(a->fd, "inotify_release", &r, 5000);
    ok(ival(&r, "released") == max, "a releases them (%s)", val(&r, "released"));

    /* RLIMIT_MSGQUEUE: the bytes of POSIX message queues, per user */
    probe_cmd(a->fd, "mq_hold", &r, 10000);
    ok(ival(&r, "mq_held") > 0 && ival(&r, "mq_errno") == EMFILE,
       "a fills its RLIMIT_MSGQUEUE with message queues (%d, then errno %d)", ival(&r, "mq_held"),
       ival(&r, "mq_errno"));
    probe_cmd(b->fd, "mq_one", &r, 5000);
    ok(ival(&r, "mq_err") == 0, "meanwhile b creates a message queue (errno %d)", ival(&r, "mq_err"));
    struct mq_attr qa = {.mq_maxmsg = 10, .mq_msgsize = 8192};
    mqd_t q = mq_open("/airlock-jail-test", O_CREAT | O_RDWR | O_CLOEXEC, 0600, &qa);
    ok(q >= 0, "meanwhile root on the host creates one (%s)", q < 0 ? strerror(errno) : "ok");
    if (q >= 0) {
        mq_close(q);
        mq_unlink("/airlock-jail-test");
    }
    probe_cmd(a->fd, "mq_release", &r, 5000);
    ok(ival(&r, "mq_released") > 0, "a releases them (%d)", ival(&r, "mq_released"));
}

static void test_two_sandboxes(void *state)
{
    char err[512] = "";
    struct sandbox a, b;
    int ra = create(state, "sb_test_a", "alpha", &a, err, sizeof(err));
    ok(ra == 0, "create sandbox a (%s)", err);
    int rb = create(state, "sb_test_b", "beta", &b, err, sizeof(err));
    ok(rb == 0, "create sandbox b (%s)", err);
    if (ra < 0 || rb < 0)
        return;
    ok(a.inst->host_base != b.inst->host_base, "different host uid ranges (%u, %u)", (unsigned)a.inst->host_base,
       (unsigned)b.inst->host_base);
    struct reply r;
    test_own_counters(&a, &b);
    probe_cmd(a.fd, "touch /tmp/secret-a", &r, 5000);
    ok(ival(&r, "err") == 0, "a writes /tmp/secret-a");
    probe_cmd(b.fd, "exists /tmp/secret-a", &r, 5000);
    ok(ival(&r, "exists") == 0, "b cannot see a's /tmp/secret-a");
    probe_cmd(a.fd, "exists /tmp/secret-a", &r, 5000);
    ok(ival(&r, "exists") == 1, "a still sees its own file");
    probe_cmd(b.fd, "checks", &r, 20000);
    ok(strcmp(val(&r, "procpids"), "1") == 0, "b's /proc shows only itself (%s)", val(&r, "procpids"));
    test_destroy_clean(state, a.inst, a.fd);
    test_destroy_clean(state, b.inst, b.fd);
}

/* Another daemon's sandbox on the slot this state would pick next (a
 * process of that uid range on the host): the slot is skipped. */
static void test_busy_range(void *state)
{
    struct jail_state *st = state;
    unsigned next = st->next_slot; /* no other thread creates now */
    uid_t foreign = userns_host_base((int)next) + 7;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return;
    pid_t child = fork();
    if (child == 0) {
        if (syscall(SYS_setresgid, foreign, foreign, foreign) < 0 || syscall(SYS_setresuid, foreign, foreign, foreign) < 0)
            _exit(1);
        (void)!write(pfd[1], "x", 1);
        for (;;)
            pause();
    }
    close(pfd[1]);
    char c;
    bool ready = child > 0 && read(pfd[0], &c, 1) == 1;
    close(pfd[0]);
    ok(ready, "a process of uid %u (slot %u's range) runs on the host", (unsigned)foreign, next);
    char err[512] = "";
    struct sandbox s;
    userns_host_scan_invalidate(st); /* the scan is cached; this create must see the new process */
    int rc = ready ? create(state, "sb_test_busy", "sandbox", &s, err, sizeof(err)) : -1;
    ok(rc == 0 && s.inst->slot != (int)next && userns_owner_of(s.inst->pid) == (long)s.inst->host_base,
       "create skips that slot: slot %d, owner uid %u (%s)", rc == 0 ? s.inst->slot : -1,
       rc == 0 ? (unsigned)s.inst->host_base : 0, err);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    if (rc == 0)
        test_destroy_clean(state, s.inst, s.fd);
}

/* Another daemon holding the slot this state would pick next (its lock on
 * that byte of the host-wide slot file, through its own open file
 * description): the slot is skipped, and usable again once released. */
static void test_slot_locked_by_other_daemon(void *state)
{
    struct jail_state *st = state;
    ok(st->slot_lock_fd >= 0, "the slot lock file %s is open", JAIL_SLOT_LOCK_FILE);
    unsigned next = st->next_slot;
    int fd = open(JAIL_SLOT_LOCK_FILE, O_RDWR | O_CLOEXEC);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = next, .l_len = 1};
    bool locked = fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0;
    ok(locked, "another description locks slot %u", next);
    char err[512] = "";
    struct sandbox s;
    int rc = locked ? create(state, "sb_test_slotlk", "sandbox", &s, err, sizeof(err)) : -1;
    ok(rc == 0 && s.inst->slot != (int)next, "create skips the locked slot: slot %d (%s)",
       rc == 0 ? s.inst->slot : -1, err);
    /* ours is now locked in the file: the other description cannot take it */
    struct flock mine = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = rc == 0 ? s.inst->slot : 0, .l_len = 1};
    ok(rc == 0 && fd >= 0 && fcntl(fd, F_OFD_SETLK, &mine) < 0 && errno == EAGAIN,
       "the created sandbox's slot is locked against other daemons");
    if (rc == 0)
        test_destroy_clean(state, s.inst, s.fd);
    if (fd >= 0)
        close(fd);
}

/* An agent that is already dead (its stream closed, it exited) destroys fine. */
static void test_destroy_dead_agent(void *state)
{
    char err[512] = "";
    struct sandbox s;
    int rc = create(state, "sb_test_dead", "sandbox", &s, err, sizeof(err));
    ok(rc == 0, "create sandbox for exit test (%s)", err);
    if (rc < 0)
        return;
    (void)!write(s.fd, "exit\n", 5);
    char c;
    ok(read(s.fd, &c, 1) == 0, "agent exit closes the stream");
    close(s.fd);
    usleep(20000);
    ok(jail_backend_ops.destroy(state, s.inst) == 0, "destroy after the agent exited returns 0");
    ok(!cg_exists("sb_test_dead"), "its cgroups are gone");
}

static void test_errors(void *state, const char *text_file)
{
    char err[512] = "";
    struct sandbox s;
    struct sandbox_spec spec = make_spec("sb_test_err", "sandbox");
    spec.runner_path = "/nonexistent/airlock_runner.py";
    int rc = jail_backend_ops.create(state, &spec, &s.inst, &s.fd, err, sizeof(err));
    ok(rc == -ENOENT && strstr(err, "/nonexistent/airlock_runner.py"), "missing runner: %d '%s'", rc, err);
    ok(!cg_exists("sb_test_err"), "no cgroup left after failure");

    spec = make_spec("../etc", "sandbox");
    rc = jail_backend_ops.create(state, &spec, &s.inst, &s.fd, err, sizeof(err));
    ok(rc == -EINVAL, "id with a path in it is refused: '%s'", err);
    spec = make_spec("sb_test_err", "bad host name");
    rc = jail_backend_ops.create(state, &spec, &s.inst, &s.fd, err, sizeof(err));
    ok(rc == -EINVAL, "invalid hostname is refused: '%s'", err);

    /* a failure inside the child travels back through the error pipe */
    void *st2 = NULL;
    err[0] = '\0';
    /* its own scope: its init and fini must not touch the main state's cgroups */
    rc = jail_backend_ops.init(&st2, &(struct backend_config){text_file, TEST_SCOPE "-2"}, err, sizeof(err));
    ok(rc == 0, "init with a non-ELF 'agent' (%s)", err);
    if (rc == 0) {
        spec = make_spec("sb_test_err", "sandbox");
        err[0] = '\0';
        rc = jail_backend_ops.create(st2, &spec, &s.inst, &s.fd, err, sizeof(err));
        ok(rc == -ENOEXEC && strstr(err, "execveat"), "child exec failure reported: %d '%s'", rc, err);
        ok(!cg_exists("sb_test_err"),
           "no cgroup left after child failure");
        jail_backend_ops.fini(st2);
    }
}

struct worker {
    void *state;
    int index;
    int failures;
    int not_root; /* creates after which this thread was not uid/gid 0 */
    uint64_t create_ms_total;
    int creates;
};

/* Concurrent creates from several threads: the multi-threaded daemon case
 * (clone while other threads hold malloc/stdio locks). */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 5; i++) {
        char id[40], err[512];
        snprintf(id, sizeof(id), "sb_test_w%d_%d", w->index, i);
        struct sandbox s;
        uint64_t t0 = now_mono_ms();
        if (create(w->state, id, "sandbox", &s, err, sizeof(err)) < 0) {
            fprintf(stderr, "# worker %d: %s\n", w->index, err);
            w->failures++;
            continue;
        }
        w->create_ms_total += now_mono_ms() - t0;
        w->creates++;
        uid_t ru = 1, eu = 1, su = 1;
        gid_t rg = 1, eg = 1, sg = 1;
        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru || eu || su || rg || eg || sg)
            w->not_root++;
        /* churn the heap and stdio while others clone */
        for (int k = 0; k < 100; k++) {
            char *p = malloc(1000 + (size_t)k);
            snprintf(p, 1000, "%d", k);
            free(p);
        }
        struct reply r;
        if (probe_cmd(s.fd, "ping", &r, 10000) < 0)
            w->failures++;
        if (jail_backend_ops.destroy(w->state, s.inst) < 0)
            w->failures++;
        close(s.fd);
    }
    return NULL;
}

static void test_concurrent(void *state)
{
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.state = state, .index = i};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    int failures = 0, creates = 0;
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
        creates += w[i].creates;
        total += w[i].create_ms_total;
    }
    ok(failures == 0 && creates == 20, "20 creates from 4 threads, all ok (%d failures), mean create %llu ms",
       failures, (unsigned long long)(creates ? total / (uint64_t)creates : 0));
    int not_root = 0;
    for (int i = 0; i < 4; i++)
        not_root += w[i].not_root;
    ok(not_root == 0, "every creating thread is uid/gid 0 after its creates (%d were not)", not_root);
    check_creator_restored("concurrent creates");
}

/* A dead daemon's leftover: a cgroup airlock/<id> with a live process in it. */
static void test_recovery(const char *probe)
{
    char err[512] = "";
    void *state = NULL;
    int rc = jail_backend_ops.init(&state, &(struct backend_config){probe, TEST_SCOPE}, err, sizeof(err));
    if (rc < 0)
        return;
    jail_backend_ops.fini(state);
    char parent[PATH_MAX];
    struct stat pst;
    ok(cgroup_dir(&test_cg, 0, "", parent, sizeof(parent)) >= 0 && stat(parent, &pst) < 0 && errno == ENOENT,
       "fini removed the empty parent cgroup %s", parent);

    /* the dead daemon's parent, with one sandbox cgroup left in it */
    rc = cgroup_init_parents(&test_cg, err, sizeof(err));
    ok(rc == 0, "recreated the parent cgroups (%s)", err);
    const char *id = "sb_fake_leftover";
    struct cgroup_limits lim = {MEM_LIMIT, 0, 0};
    if (rc == 0)
        rc = cgroup_create(&test_cg, id, &lim, err, sizeof(err));
    ok(rc == 0, "made a leftover cgroup %s (%s)", id, err);
    if (rc < 0)
        return; /* no cgroup to recover: the rest would wait forever */
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    rc = cgroup_add_pid(&test_cg, id, child, err, sizeof(err));
    ok(rc == 0, "sleeping process %d put in it (%s)", (int)child, err);

    rc = jail_backend_ops.init(&state, &(struct backend_config){probe, TEST_SCOPE}, err, sizeof(err));
    ok(rc == 0, "init with a leftover (%s)", err);
    ok(!cg_exists(id), "init removed the leftover cgroup");
    int st = 0;
    pid_t w = waitpid(child, &st, 0);
    ok(w == child && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "init SIGKILLed the leftover process");
    if (rc == 0)
        jail_backend_ops.fini(state);
}

static bool no_sandbox_cgroups(void)
{
    for (int i = 0; i < cgroup_count(test_cg.mode); i++) {
        char dir[PATH_MAX], parent[PATH_MAX];
        if (cgroup_dir(&test_cg, i, "x", dir, sizeof(dir)) < 0)
            return false;
        snprintf(parent, sizeof(parent), "%.*s", (int)(strlen(dir) - 2), dir);
        DIR *d = opendir(parent);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL)
            if (de->d_type == DT_DIR && de->d_name[0] != '.') {
                printf("# leftover %s/%s\n", parent, de->d_name);
                closedir(d);
                return false;
            }
        if (d)
            closedir(d);
    }
    return true;
}

static bool opt_in(const char *opts, const char *name)
{
    char a[1100], b[80];
    snprintf(a, sizeof(a), ",%s,", opts);
    snprintf(b, sizeof(b), ",%s,", name);
    return strstr(a, b) != NULL;
}

/* --cgroup-favordynmods: reported without a change, then set without losing
 * an option of the superblock or a flag of the mount; the host's state is
 * put back afterwards. */
static void test_favordynmods(void)
{
    char mnt[PATH_MAX], before[1024], after[1024], msg[PATH_MAX + 200];
    if (cgroup2_mount(mnt, sizeof(mnt), before, sizeof(before)) < 0) {
        ok(1, "# SKIP no cgroup2 mount on this host");
        return;
    }
    bool was_on = opt_in(before, "favordynmods");
    struct statvfs sv0, sv1;
    ok(statvfs(mnt, &sv0) == 0, "statvfs %s", mnt);
    int r = cgroup_favordynmods(false, msg, sizeof(msg));
    ok(r == (was_on ? 1 : 0), "favordynmods reported (%d): %s", r, msg);
    ok(cgroup2_mount(mnt, sizeof(mnt), after, sizeof(after)) == 0 && strcmp(before, after) == 0,
       "reporting changes nothing (%s)", after);
    r = cgroup_favordynmods(true, msg, sizeof(msg));
    ok(r == 1, "favordynmods set (%d): %s", r, msg);
    ok(cgroup2_mount(mnt, sizeof(mnt), after, sizeof(after)) == 0 && opt_in(after, "favordynmods"),
       "the superblock has it: %s", after);
    char copy[1024], *save = NULL;
    snprintf(copy, sizeof(copy), "%s", before);
    bool kept = true;
    for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
        kept = kept && opt_in(after, o);
    ok(kept, "every option it had is kept (%s -> %s)", before, after);
    int sr = statvfs(mnt, &sv1);
    ok(sr == 0 && sv0.f_flag == sv1.f_flag, "the mount's flags are unchanged (%#lx -> %#lx)", sv0.f_flag,
       sv1.f_flag);
    if (!was_on) {
        /* back as it was: the same reconfiguration without the flag */
        int fd = fspick(AT_FDCWD, mnt, FSPICK_CLOEXEC);
        snprintf(copy, sizeof(copy), "%s", before);
        bool put_back = fd >= 0;
        for (char *o = strtok_r(copy, ",", &save); put_back && o; o = strtok_r(NULL, ",", &save))
            if (strcmp(o, "rw") != 0 && strcmp(o, "ro") != 0)
                put_back = fsconfig(fd, FSCONFIG_SET_FLAG, o, NULL, 0) == 0;
        put_back = put_back && fsconfig(fd, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) == 0;
        if (fd >= 0)
            close(fd);
        ok(put_back && cgroup2_mount(mnt, sizeof(mnt), after, sizeof(after)) == 0 && strcmp(before, after) == 0,
           "host state put back (%s)", after);
    }
}

/* A child that spins (so a freeze has something to stop), in its own
 * cgroup dir under root: 0 and *pid, or -1. */
static int spin_in(const char *dir, pid_t *pid)
{
    if (mkdir(dir, 0755) < 0)
        return -1;
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            ;
    }
    char v[32], path[PATH_MAX + 16];
    snprintf(v, sizeof(v), "%d", (int)p);
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    if (p < 0 || write_file(path, v) < 0) {
        if (p > 0) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
        }
        rmdir(dir);
        return -1;
    }
    *pid = p;
    return 0;
}

static bool file_has(const char *dir, const char *file, const char *want)
{
    char path[PATH_MAX + 64], buf[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return read_file_small(path, buf, sizeof(buf)) >= 0 && strstr(buf, want) != NULL;
}

/* The freezer of each cgroup mode, on a bare directory of that mode's
 * hierarchy, whatever mode the host's jail runs in: v1's freezer
 * hierarchy, and the first cgroup2 mount (a hybrid host's empty
 * /sys/fs/cgroup/unified has cgroup.freeze too). Freeze, thaw, freeze
 * again, then kill_frozen: the frozen task must die (v1: only once thawed). */
static void test_freezer_mode(const struct cgroup_impl *impl, const char *name, const char *root,
                              const char *state_file, const char *frozen, const char *thawed)
{
    char dir[PATH_MAX - 64], err[512] = "";
    if (snprintf(dir, sizeof(dir), "%s/airlock-freeze-test-%d", root, (int)getpid()) >= (int)sizeof(dir))
        return;
    pid_t pid;
    if (spin_in(dir, &pid) < 0) {
        ok(1, "# SKIP %s freezer: no usable hierarchy at %s", name, root);
        return;
    }
    int r = impl->set_frozen(dir, true, err, sizeof(err));
    ok(r == 0 && file_has(dir, state_file, frozen), "%s: freeze (%s)", name, err);
    r = impl->set_frozen(dir, false, err, sizeof(err));
    ok(r == 0 && file_has(dir, state_file, thawed), "%s: thaw (%s)", name, err);
    r = impl->set_frozen(dir, true, err, sizeof(err));
    ok(r == 0, "%s: freeze again (%s)", name, err);
    r = impl->kill_frozen(dir);
    ok(r == 0, "%s: kill_frozen (%d)", name, r);
    int status = 0;
    uint64_t deadline = now_mono_ms() + 10000;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_mono_ms() < deadline)
        usleep(1000);
    ok(w == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: the frozen task died of SIGKILL", name);
    if (w != pid) {
        kill(pid, SIGKILL);
        (void)impl->set_frozen(dir, false, err, sizeof(err));
        waitpid(pid, NULL, 0);
    }
    ok(file_has(dir, state_file, thawed), "%s: left thawed", name);
    ok(impl->kill_frozen(dir) == 0, "%s: kill_frozen of a thawed cgroup is a no-op", name);
    ok(rmdir(dir) == 0, "%s: removed", name);
}

static void test_freezers(void)
{
    test_freezer_mode(&cgroup_v1_impl, "v1", CGROUP_ROOT "/freezer", "freezer.state", "FROZEN", "THAWED");
    char mnt[PATH_MAX], opts[1024];
    if (cgroup2_mount(mnt, sizeof(mnt), opts, sizeof(opts)) < 0) {
        ok(1, "# SKIP v2 freezer: no cgroup2 mount");
        return;
    }
    test_freezer_mode(&cgroup_v2_impl, "v2", mnt, "cgroup.events", "frozen 1", "frozen 0");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PROBE\n", argv[0]);
        return 2;
    }
    if (geteuid() != 0) {
        printf("1..0 # SKIP jail tests need root\n");
        return 77;
    }
    log_init("test_jail", LOG_LVL_WARN);
    signal(SIGPIPE, SIG_IGN);
    const char *probe = argv[1];
    /* own cgroup parent: init's recovery must not kill the sandboxes of a
     * daemon running on the same host */
    
    /* the runner lives in a 0700 directory: the child (an unprivileged host
     * uid) could not walk to it; the parent's open_tree must. */
    snprintf(runner_dir, sizeof(runner_dir), "/tmp/airlock-jail-test.XXXXXX");
    if (!mkdtemp(runner_dir))
        return 2;
    snprintf(runner_path, sizeof(runner_path), "%s/airlock_runner.py", runner_dir);
    int rfd = open(runner_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rfd < 0 || write_all(rfd, "print('runner')\n", 16) < 0)
        return 2;
    close(rfd);

    char err[512] = "";
    void *state = NULL;
    dumpable_at_start = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    int rc = jail_backend_ops.init(&state, &(struct backend_config){probe, TEST_SCOPE}, err, sizeof(err));
    ok(rc == 0, "init (%s)", err);
    check_creator_restored("init's user namespace probe");
    if (rc < 0)
        goto done;
    test_state = state;
    test_cg = ((struct jail_state *)state)->cg;

    struct sandbox s;
    uint64_t t0 = now_mono_ms();
    rc = create(state, "sb_test_main", "sandbox", &s, err, sizeof(err));
    ok(rc == 0, "create in %llu ms (%s)", (unsigned long long)(now_mono_ms() - t0), err);
    if (rc == 0) {
        test_host_view(s.inst);
        test_inside(s.fd, "sandbox");
        test_mounts(s.fd);
        test_limits(s.inst, s.fd);
        test_destroy_clean(state, s.inst, s.fd);
    }
    test_two_sandboxes(state);
    test_busy_range(state);
    test_slot_locked_by_other_daemon(state);
    test_destroy_dead_agent(state);
    test_errors(state, runner_path);
    test_concurrent(state);
    jail_backend_ops.fini(state);
    test_recovery(probe);
    test_favordynmods();
    test_freezers();
    ok(no_sandbox_cgroups(), "no sandbox cgroups left at the end");
    for (int i = 0; i < cgroup_count(test_cg.mode); i++) { /* the test's parent dirs */
        char dir[PATH_MAX];
        if (cgroup_dir(&test_cg, i, "x", dir, sizeof(dir)) >= 0) {
            dir[strlen(dir) - 2] = '\0';
            (void)rmdir(dir);
        }
    }

done:
    unlink(runner_path);
    rmdir(runner_dir);
    printf("1..%d\n# %d passed, %d failed\n", n_test, n_pass, n_fail);
    return n_fail ? 1 : 0;
}
