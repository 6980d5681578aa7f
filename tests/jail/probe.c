/* probe.c - stands in for airlock-agent in the jail tests.
 *
 * Built static and exec'd by the jail backend exactly like the agent (PID 1
 * of the sandbox, control stream on fd 3). It reads one command per line on
 * fd 3 and answers with "key=value" lines followed by "end":
 *
 *   checks          everything about the sandbox the driver asserts on
 *   mounts          per-mount flags (mountinfo), exec on the scratch dirs,
 *                   /proc masks
 *   touch PATH      create a file            -> err=<errno>
 *   exists PATH     stat                     -> exists=0|1
 *   oom BYTES       child (oom_score_adj 1000) touches BYTES -> status=..
 *   forkbomb        child forks until fork fails -> fork_errno=.. forks=..
 *   spawn           leave a sleeping child behind -> pid=..
 *   inotify_hold    inotify instances until one fails, kept open
 *                   -> inotify_held=.. inotify_errno=..
 *   inotify_one     one inotify instance, closed again -> inotify_err=<errno>
 *   inotify_release close the held ones -> released=..
 *   mq_hold         80 KiB POSIX message queues until one fails, kept
 *                   -> mq_held=.. mq_errno=..
 *   mq_one          one such queue, removed again -> mq_err=<errno>
 *   mq_release      close and unlink the held ones -> mq_released=..
 *   ping            -> pong=1
 *   exit            exit 0
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mqueue.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

static FILE *out;

static int err_of(int rc) { return rc < 0 ? errno : 0; }

static void say(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *key, const char *fmt, ...)
{
    va_list ap;
    fprintf(out, "%s=", key);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

static void list_dir(const char *key, const char *path, int numeric_only)
{
    char buf[1024] = "";
    DIR *d = opendir(path);
    if (!d) {
        say(key, "ERR%d", errno);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (numeric_only && (de->d_name[0] < '0' || de->d_name[0] > '9'))
            continue;
        if (strlen(buf) + strlen(de->d_name) + 2 < sizeof(buf)) {
            if (buf[0])
                strcat(buf, ",");
            strcat(buf, de->d_name);
        }
    }
    closedir(d);
    say(key, "%s", buf);
}

static void check_scratch(const char *key, const char *dir)
{
    char k[64], path[256];
    struct statfs sf;
    struct stat st;
    snprintf(k, sizeof(k), "%s_tmpfs", key);
    say(k, "%d", statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC);
    snprintf(path, sizeof(path), "%s/probe-file", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    snprintf(k, sizeof(k), "%s_write", key);
    say(k, "%d", fd < 0 ? errno : (int)(write(fd, "x", 1) == 1 ? 0 : errno));
    if (fd >= 0)
        close(fd);
    snprintf(k, sizeof(k), "%s_uid", key);
    say(k, "%d", stat(dir, &st) == 0 ? (int)st.st_uid : -1);
    snprintf(k, sizeof(k), "%s_mode", key);
    say(k, "%o", stat(dir, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0);
}

static int connect_errno(int type, const char *ip, int port)
{
    int s = socket(AF_INET, type, 0);
    if (s < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    int rc;
    if (type == SOCK_DGRAM)
        rc = sendto(s, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
    else
        rc = connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
    close(s);
    return rc;
}

static void net_ifaces(void)
{
    char buf[4096] = "", names[256] = "";
    int fd = open("/proc/net/dev", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 0) {
        say("ifaces", "ERR%d", errno);
        return;
    }
    buf[n] = '\0';
    /* lines after the two header lines: "  lo: 123 ..." */
    char *line = strchr(buf, '\n');
    line = line ? strchr(line + 1, '\n') : NULL;
    while (line && *++line) {
        char *colon = strchr(line, ':');
        if (!colon)
            break;
        char *p = line;
        while (*p == ' ')
            p++;
        if (names[0])
            strncat(names, ",", sizeof(names) - strlen(names) - 1);
        strncat(names, p, (size_t)(colon - p) < sizeof(names) - strlen(names) - 1 ? (size_t)(colon - p) : 0);
        line = strchr(line, '\n');
    }
    say("ifaces", "%s", names);
}

static int run_status(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        char *envp[] = {"PATH=/usr/bin:/bin", NULL};
        execve(argv[0], argv, envp);
        _exit(126);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void file_contains(const char *key, const char *path, const char *needle)
{
    char buf[8192];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    say(key, "%d", n > 0 && strstr(buf, needle) != NULL);
}

static void cmd_checks(void)
{
    struct utsname u;
    struct stat st;
    struct statvfs sv;

    say("pid", "%d", (int)getpid());
    say("ppid", "%d", (int)getppid());
    say("uid", "%d", (int)getuid());
    say("gid", "%d", (int)getgid());
    say("groups", "%d", getgroups(0, NULL));
    uname(&u);
    say("hostname", "%s", u.nodename);
    list_dir("procpids", "/proc", 1);
    list_dir("fds", "/proc/self/fd", 0);
    list_dir("root", "/", 0);
    say("mkdir_root", "%d", err_of(mkdir("/x", 0755)));
    say("usr_create", "%d", err_of(open("/usr/probe-x", O_WRONLY | O_CREAT, 0644)));
    say("usr_ro", "%d", statvfs("/usr", &sv) == 0 && (sv.f_flag & ST_RDONLY));
    say("etc_write", "%d", err_of(open("/etc/passwd", O_WRONLY)));
    check_scratch("tmp", "/tmp");
    check_scratch("data", "/data");
    check_scratch("home", "/home/user");
    check_scratch("shm", "/dev/shm");
    say("sys", "%d", err_of(stat("/sys", &st)));
    /* /sys: the sandbox's CPU list only, read-only (src/jail/sysview.c) */
    say("sys_fs", "%d", err_of(stat("/sys/fs", &st)));
    say("sys_ro", "%d", statvfs("/sys", &sv) == 0 && (sv.f_flag & ST_RDONLY));
    say("sys_online", "%d", err_of(stat("/sys/devices/system/cpu/online", &st)));
    /* /proc/meminfo: the agent's file, bound read-only (root inside cannot write it) */
    say("meminfo_write", "%d", err_of(open("/proc/meminfo", O_WRONLY)));
    int fd = open("/dev/null", O_RDWR);
    char c;
    say("devnull", "%d", fd >= 0 && write(fd, "x", 1) == 1 && read(fd, &c, 1) == 0);
    if (fd >= 0)
        close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    say("urandom", "%d", fd >= 0 && read(fd, &c, 1) == 1);
    if (fd >= 0)
        close(fd);
    file_contains("passwd_user", "/etc/passwd", "user:x:1000:1000:");
    file_contains("hosts", "/etc/hosts", "127.0.0.1 localhost");
    file_contains("os_release", "/etc/os-release", "ID=");
    file_contains("localtime", "/etc/localtime", "TZif");
    file_contains("cgroup_root", "/proc/self/cgroup", ":/\n");
    say("resolv_size", "%lld", stat("/etc/resolv.conf", &st) == 0 ? (long long)st.st_size : -1LL);
    say("ldcache", "%d", stat("/etc/ld.so.cache", &st) == 0);
    say("runner", "%d", access("/opt/airlock/airlock_runner.py", R_OK) == 0);
    say("runner_write", "%d", err_of(open("/opt/airlock/airlock_runner.py", O_WRONLY)));
    say("runner_ro", "%d", statvfs("/opt/airlock/airlock_runner.py", &sv) == 0 && (sv.f_flag & ST_RDONLY));
    say("tcp_ext", "%d", connect_errno(SOCK_STREAM, "1.1.1.1", 53));
    say("udp_ext", "%d", connect_errno(SOCK_DGRAM, "8.8.8.8", 53));
    say("tcp_lo", "%d", connect_errno(SOCK_STREAM, "127.0.0.1", 9));
    net_ifaces();
    /* net sysctls belong to the sandbox's root, so only the ro mount stops this */
    say("proc_sys_write", "%d", err_of(open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY)));
    say("proc_sys_ro", "%d", statvfs("/proc/sys", &sv) == 0 && (sv.f_flag & ST_RDONLY));
    say("exe_write", "%d", err_of(open("/proc/self/exe", O_WRONLY)));
    say("mknod", "%d", err_of(mknod("/tmp/nulldev", S_IFCHR | 0666, makedev(1, 3))));
    char *sh[] = {"/bin/sh", "-c", "exit 7", NULL};
    say("sh_exit", "%d", run_status(sh));
    char *py[] = {"/usr/bin/python3", "-c", "import json, sys; sys.exit(5)", NULL};
    say("py_exit", "%d", run_status(py));
}

/* The per-mount options of the topmost mount at each path, and the mounts
 * lacking nosuid or nodev. mountinfo fields: id parent maj:min root
 * mountpoint options ... */
static void mount_flags(void)
{
    static const char *const points[] = {"/",          "/usr", "/etc",     "/tmp",     "/data", "/home/user",
                                         "/dev",       "/dev/pts", "/dev/shm", "/proc", "/proc/sys"};
    static char text[65536];
    char opts[sizeof(points) / sizeof(points[0])][256];
    char no_nosuid[2048] = "", no_nodev[2048] = "";
    memset(opts, 0, sizeof(opts));
    int fd = open("/proc/self/mountinfo", O_RDONLY);
    ssize_t n = 0, k;
    while (fd >= 0 && (k = read(fd, text + n, sizeof(text) - 1 - (size_t)n)) > 0)
        n += k;
    if (fd >= 0)
        close(fd);
    text[n] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char mp[512], mo[256];
        if (sscanf(line, "%*s %*s %*s %*s %511s %255s", mp, mo) != 2)
            continue;
        for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
            if (strcmp(mp, points[i]) == 0)
                snprintf(opts[i], sizeof(opts[i]), "%s", mo); /* later lines are mounted on top */
        char *lists[2] = {no_nosuid, no_nodev};
        const char *flags[2] = {"nosuid", "nodev"};
        for (int j = 0; j < 2; j++) {
            char padded[260];
            snprintf(padded, sizeof(padded), ",%s,", mo);
            char want[16];
            snprintf(want, sizeof(want), ",%s,", flags[j]);
            if (!strstr(padded, want) && strlen(lists[j]) + strlen(mp) + 2 < 2048) {
                if (lists[j][0])
                    strcat(lists[j], " ");
                strcat(lists[j], mp);
            }
        }
    }
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        char key[160];
        snprintf(key, sizeof(key), "mnt%s", points[i]);
        say(key, "%s", opts[i][0] ? opts[i] : "none");
    }
    say("no_nosuid", "%s", no_nosuid);
    say("no_nodev", "%s", no_nodev);
}

/* Copy /usr/bin/true into dir and run it: 0, or the errno of execve. */
static int exec_from(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/probe-true", dir);
    int in = open("/usr/bin/true", O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (in < 0 || out < 0)
        return -errno;
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            return -errno;
    close(in);
    close(out);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {path, NULL}, *envp[] = {NULL};
        execve(path, argv, envp);
        _exit(errno & 0x7f);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int sh(const char *script)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    return run_status(argv);
}

/* per path: A absent, C masked by a char device, F still the real file /
 * E empty read-only dir, D anything else / R read-only, W writable */
static void proc_masks(void)
{
    static const char *const files[] = {"/proc/kcore",       "/proc/keys",     "/proc/latency_stats",
                                        "/proc/timer_list",  "/proc/timer_stats", "/proc/sched_debug",
                                        "/proc/kallsyms",    "/proc/modules",  "/proc/config.gz",
                                        /* host-wide tables (issue 10) */
                                        "/proc/locks", "/proc/cgroups", "/proc/key-users", "/proc/sys/kernel/pty/nr",
                                        "/proc/sys/fs/file-nr", "/proc/sys/fs/inode-nr", "/proc/sys/fs/inode-state",
                                        "/proc/sys/fs/dentry-state", "/proc/sys/fs/aio-nr"};
    static const char *const dirs[] = {"/proc/acpi", "/proc/asound", "/proc/scsi", "/proc/pressure"};
    static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
    char m[32] = "";
    struct stat st;
    struct statvfs sv;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        m[i] = stat(files[i], &st) < 0 ? 'A' : S_ISCHR(st.st_mode) ? 'C' : 'F';
    say("proc_masked_files", "%s", m);
    memset(m, 0, sizeof(m));
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        DIR *d = opendir(dirs[i]);
        if (!d) {
            m[i] = 'A';
            continue;
        }
        int entries = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            entries += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
        closedir(d);
        m[i] = entries == 0 && statvfs(dirs[i], &sv) == 0 && (sv.f_flag & ST_RDONLY) ? 'E' : 'D';
    }
    say("proc_masked_dirs", "%s", m);
    memset(m, 0, sizeof(m));
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
        m[i] = stat(ro[i], &st) < 0 ? 'A' : statvfs(ro[i], &sv) == 0 && (sv.f_flag & ST_RDONLY) ? 'R' : 'W';
    say("proc_read_only", "%s", m);
}

/* The device and inode of files every sandbox opens: the test compares them
 * with the host's (they must be the sandbox's own: issue 10). */
static void shared_inodes(void)
{
    static const char *const paths[] = {"/usr/bin/python3", "/usr/lib", "/etc/ld.so.cache", "/etc/alternatives",
                                        "/opt/airlock/airlock_runner.py", "/dev/null", "/dev/tty"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct stat st;
        char key[160];
        snprintf(key, sizeof(key), "inode%s", paths[i]);
        if (stat(paths[i], &st) < 0)
            say(key, "none");
        else
            say(key, "%llu:%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                (unsigned long long)st.st_rdev);
    }
}

static void cmd_mounts(void)
{
    mount_flags();
    shared_inodes();
    say("exec_tmp", "%d", exec_from("/tmp"));
    say("exec_home", "%d", exec_from("/home/user"));
    say("exec_data", "%d", exec_from("/data"));
    say("exec_shm", "%d", exec_from("/dev/shm"));
    /* what /tmp and /home/user keep exec for: compiled code, run and loaded */
    say("gcc_tmp", "%d", sh("cd /tmp && printf 'int main(void){return 3;}\\n' > g.c && gcc -o g g.c && ./g"));
    say("so_home", "%d",
        sh("mkdir -p /home/user/.local/lib && printf 'int f(void){return 42;}\\n' > /tmp/l.c && "
           "gcc -shared -fPIC -o /home/user/.local/lib/l.so /tmp/l.c && "
           "python3 -c 'import ctypes, sys; sys.exit(ctypes.CDLL(\"/home/user/.local/lib/l.so\").f())'"));
    say("so_data", "%d",
        sh("cp /home/user/.local/lib/l.so /data/l.so && python3 -c 'import ctypes, sys\n"
           "try: ctypes.CDLL(\"/data/l.so\")\nexcept OSError as e: sys.exit(7 if \"failed to map\" in str(e) else 8)'"));
    proc_masks();
}

static void cmd_oom(long long bytes)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY);
        if (fd < 0 || write(fd, "1000", 4) != 4)
            _exit(3);
        close(fd);
        for (long long done = 0; done < bytes; done += 1 << 20) {
            char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                _exit(4);
            memset(p, 1, 1 << 20);
        }
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    say("status", "%s%d", WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static void cmd_forkbomb(void)
{
    int pfd[2];
    if (pipe(pfd) < 0) {
        say("fork_errno", "-1");
        return;
    }
    pid_t leader = fork();
    if (leader == 0) {
        setpgid(0, 0);
        int n = 0, e = 0;
        for (;;) {
            pid_t c = fork();
            if (c == 0) {
                pause();
                _exit(0);
            }
            if (c < 0) {
                e = errno;
                break;
            }
            n++;
            if (n > 100000)
                break;
        }
        dprintf(pfd[1], "%d %d\n", e, n);
        kill(0, SIGKILL);
        _exit(0);
    }
    close(pfd[1]);
    char buf[64] = "";
    ssize_t k = read(pfd[0], buf, sizeof(buf) - 1);
    buf[k > 0 ? k : 0] = '\0';
    close(pfd[0]);
    int e = -1, n = -1;
    sscanf(buf, "%d %d", &e, &n);
    /* reap the leader and its orphans (we are PID 1: they come to us) */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    say("fork_errno", "%d", e);
    say("forks", "%d", n);
}

/* The per-user inotify counter (user.max_inotify_instances, 128 by default)
 * is what the driver shows is the sandbox's own. */
static int inotify_fds[4096];
static int n_inotify;

static void cmd_inotify_hold(void)
{
    int e = 0;
    while (n_inotify < (int)(sizeof(inotify_fds) / sizeof(inotify_fds[0]))) {
        int fd = inotify_init1(IN_CLOEXEC);
        if (fd < 0) {
            e = errno;
            break;
        }
        inotify_fds[n_inotify++] = fd;
    }
    say("inotify_held", "%d", n_inotify);
    say("inotify_errno", "%d", e);
}

/* RLIMIT_MSGQUEUE (819200 bytes by default) per user: ~9 such queues. */
static mqd_t mq_fds[256];
static int n_mq;

static mqd_t mq_make(const char *name)
{
    struct mq_attr a = {.mq_maxmsg = 10, .mq_msgsize = 8192};
    return mq_open(name, O_CREAT | O_RDWR | O_CLOEXEC, 0600, &a);
}

static void cmd_mq_hold(void)
{
    int e = 0;
    while (n_mq < (int)(sizeof(mq_fds) / sizeof(mq_fds[0]))) {
        char name[32];
        snprintf(name, sizeof(name), "/hold%d", n_mq);
        mqd_t q = mq_make(name);
        if (q < 0) {
            e = errno;
            break;
        }
        mq_fds[n_mq++] = q;
    }
    say("mq_held", "%d", n_mq);
    say("mq_errno", "%d", e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    out = fdopen(3, "r+");
    if (!out)
        return 2;
    FILE *in = fdopen(dup(3), "r");
    char line[512];
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "checks") == 0) {
            cmd_checks();
        } else if (strcmp(line, "mounts") == 0) {
            cmd_mounts();
        } else if (strncmp(line, "touch ", 6) == 0) {
            int fd = open(line + 6, O_WRONLY | O_CREAT, 0644);
            say("err", "%d", fd < 0 ? errno : 0);
            if (fd >= 0)
                close(fd);
        } else if (strncmp(line, "exists ", 7) == 0) {
            struct stat st;
            say("exists", "%d", stat(line + 7, &st) == 0);
        } else if (strncmp(line, "oom ", 4) == 0) {
            cmd_oom(atoll(line + 4));
        } else if (strcmp(line, "forkbomb") == 0) {
            cmd_forkbomb();
        } else if (strcmp(line, "spawn") == 0) {
            pid_t pid = fork();
            if (pid == 0) {
                for (;;)
                    pause();
            }
            say("pid", "%d", (int)pid);
        } else if (strcmp(line, "inotify_hold") == 0) {
            cmd_inotify_hold();
        } else if (strcmp(line, "inotify_one") == 0) {
            int fd = inotify_init1(IN_CLOEXEC);
            say("inotify_err", "%d", fd < 0 ? errno : 0);
            if (fd >= 0)
                close(fd);
        } else if (strcmp(line, "inotify_release") == 0) {
            say("released", "%d", n_inotify);
            while (n_inotify > 0)
                close(inotify_fds[--n_inotify]);
        } else if (strcmp(line, "mq_hold") == 0) {
            cmd_mq_hold();
        } else if (strcmp(line, "mq_one") == 0) {
            mqd_t q = mq_make("/one");
            say("mq_err", "%d", q < 0 ? errno : 0);
            if (q >= 0) {
                mq_close(q);
                mq_unlink("/one");
            }
        } else if (strcmp(line, "mq_release") == 0) {
            say("mq_released", "%d", n_mq);
            while (n_mq > 0) {
                char name[32];
                mq_close(mq_fds[--n_mq]);
                snprintf(name, sizeof(name), "/hold%d", n_mq);
                mq_unlink(name);
            }
        } else if (strcmp(line, "ping") == 0) {
            say("pong", "1");
        } else if (strcmp(line, "exit") == 0) {
            return 0;
        } else {
            say("unknown", "%s", line);
        }
        fputs("end\n", out);
        fflush(out);
    }
    return 0;
}
