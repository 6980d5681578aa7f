/* cgroupfs.c - the cgroup filesystem's files, as both modes use them:
 * knobs written and read, controller lists, and the kill loop over
 * cgroup.procs (v1's only way, v2's without cgroup.kill).
 */
#include "cgroup_impl.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* dir/file into buf; -ENAMETOOLONG rather than a truncated path. */
int cgroupfs_path_join(char *buf, size_t len, const char *dir, const char *file)
{
    int n = snprintf(buf, len, "%s/%s", dir, file);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cgroupfs_write(const char *dir, const char *file, const char *value, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int r = cgroupfs_path_join(path, sizeof(path), dir, file);
    if (r < 0)
        return jail_err(err, errlen, r, "cgroup file %s in %s", file, dir);
    r = write_file(path, value);
    if (r < 0)
        return jail_err(err, errlen, r, "write %s to %s", value, path);
    return 0;
}

bool cgroupfs_controllers_have(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

int cgroupfs_mkdir_exist_ok(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return jail_err(err, errlen, -errno, "mkdir %s", path);
    return 0;
}

void cgroupfs_u64_or_max(char *buf, size_t len, uint64_t v, const char *unlimited)
{
    if (v == 0)
        snprintf(buf, len, "%s", unlimited);
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

int cgroupfs_set_pids_max(const char *dir, uint32_t n, char *err, size_t errlen)
{
    char v[32];
    cgroupfs_u64_or_max(v, sizeof(v), n, "max");
    return cgroupfs_write(dir, "pids.max", v, err, errlen);
}

void cgroupfs_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Fill buf with the content of dir/cgroup.procs; returns bytes or -errno. */
static int read_procs(const char *dir, char *buf, size_t cap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    return read_file_small(path, buf, cap);
}

/* SIGKILL every process listed in dir/cgroup.procs. Returns how many were
 * listed (0 = empty) or -errno. */
static int kill_listed_procs(const char *dir, char *buf, size_t cap)
{
    int r = read_procs(dir, buf, cap);
    if (r < 0)
        return r;
    /* a full buffer may end in a cut pid ("12" of "12345"): only whole lines */
    char *last_nl = strrchr(buf, '\n');
    if (!last_nl)
        return r > 0 ? -EIO : 0;
    last_nl[1] = '\0';
    int n = 0;
    for (char *p = buf, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p || *end != '\n')
            break;
        end++;
        if (pid > 1) {
            (void)kill((pid_t)pid, SIGKILL);
            n++;
        }
    }
    return n;
}

int cgroupfs_kill_listed_once(const char *dir)
{
    cleanup_free char *buf = malloc(65536);
    if (!buf)
        return -ENOMEM;
    return kill_listed_procs(dir, buf, 65536);
}

/* Does content hold want as a whole line ("FROZEN\n") or as a line of
 * its own in a "key value" file ("frozen 1\n")? */
static bool has_line(const char *content, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = content; (p = strstr(p, want)) != NULL; p += n)
        if ((p == content || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

/* The freezer's state files change within microseconds for an idle
 * sandbox: look at once, then every 100 us (a 1 ms sleep would be most
 * of a pause's cost), then every millisecond. */
int cgroupfs_wait_for(const char *dir, const char *file, const char *want)
{
    char path[PATH_MAX], buf[512];
    int r = cgroupfs_path_join(path, sizeof(path), dir, file);
    if (r < 0)
        return r;
    uint64_t deadline = now_mono_ms() + CGROUP_FREEZE_TIMEOUT_MS;
    for (unsigned i = 0;; i++) {
        if ((r = read_file_small(path, buf, sizeof(buf))) < 0)
            return r;
        if (has_line(buf, want))
            return 0;
        if (now_mono_ms() > deadline)
            return -ETIMEDOUT;
        struct timespec ts = {.tv_nsec = i < 50 ? 100000L : 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* SIGKILL what cgroup.procs lists, again and again until it stays empty: v1
 * has nothing like v2's cgroup.kill, and a fork racing with us is caught by
 * the next round. */
int cgroupfs_kill_listed_until_empty(const char *dir)
{
    uint64_t deadline = now_mono_ms() + CGROUP_EMPTY_TIMEOUT_MS;
    cleanup_free char *buf = malloc(65536);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        int n = kill_listed_procs(dir, buf, 65536);
        if (n == -ENOENT || n == 0)
            return 0;
        if (n < 0)
            return n;
        if (now_mono_ms() > deadline)
            return -ETIMEDOUT;
        cgroupfs_sleep_ms(1);
    }
}
