/* tmpl_build.c - one template build (tmpl_build.h).
 *
 * The tools run as root, because dpkg must create root-owned files and run
 * maintainer scripts in a chroot (mmdebstrap --mode=root). What they install
 * comes only from the Debian archive, checked against
 * debian-archive-keyring; a spec adds no commands. Each tool runs in its own
 * mount namespace (mmdebstrap mounts /proc, /sys and /dev inside the target:
 * if the daemon kills it halfway those mounts vanish with the namespace
 * instead of staying on the host) and its own process group (so a cancel
 * reaches everything it started).
 */
#include "tmpl_build.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rmtree.h"
#include "treehash.h"
#include "util.h"

#define MMDEBSTRAP "/usr/bin/mmdebstrap"
#define MKFS_EROFS "/usr/bin/mkfs.erofs"
#define CP "/bin/cp"
#define KEYRING "/usr/share/keyrings/debian-archive-keyring.gpg"
/* Fixed, so two builds of the same spec produce the same files (dpkg and
 * maintainer scripts clamp the times they write to it) and the same image. */
#define SOURCE_DATE_EPOCH "1700000000"


int tmpl_build_new(struct tmpl_spec *spec, bool use_cache, struct tmpl_build **out)
{
    struct tmpl_build *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    memcpy(b->id, "bld_", 4);
    int r = random_hex(b->id + 4, 8);
    if (r < 0) {
        free(b);
        return r;
    }
    snprintf(b->name, sizeof(b->name), "%s", spec->name);
    snprintf(b->spec_hash, sizeof(b->spec_hash), "%s", spec->hash);
    b->spec = steal_ptr(&spec->canon);
    b->use_cache = use_cache;
    b->state = BUILD_QUEUED;
    b->queued_ms = now_wall_ms();
    *out = b;
    return 0;
}

void tmpl_build_free(struct tmpl_build *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_lines; i++)
        free(b->lines[i]);
    free(b->lines);
    json_decref(b->spec);
    free(b);
}

static const char *state_name(enum build_state s)
{
    switch (s) {
    case BUILD_QUEUED: return "queued";
    case BUILD_RUNNING: return "running";
    case BUILD_SUCCEEDED: return "succeeded";
    case BUILD_FAILED: return "failed";
    }
    return "?";
}

json_t *tmpl_build_json(const struct tmpl_build *b, unsigned since)
{
    json_t *lines = json_array();
    size_t total = b->dropped + b->n_lines;
    for (size_t i = since > b->dropped ? since - b->dropped : 0; i < b->n_lines; i++)
        json_array_append_new(lines, json_string(b->lines[i]));
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:I,s:b}", "id", b->id, "template", b->name, "state",
                          state_name(b->state), "spec_hash", b->spec_hash, "progress", lines, "next", (json_int_t)total,
                          "cache_hit", b->cache_hit);
    if (b->state == BUILD_FAILED)
        json_object_set_new(j, "error", json_string(b->error));
    if (b->tree_hash[0])
        json_object_set_new(j, "tree_hash", json_string(b->tree_hash));
    if (b->finished_ms && b->started_ms)
        json_object_set_new(j, "seconds", json_real((double)(b->finished_ms - b->started_ms) / 1000.0));
    return j;
}

/* Lock held. */
static void add_line_locked(struct tmpl_build *b, const char *line)
{
    if (b->n_lines == BUILD_MAX_LINES) {
        free(b->lines[0]);
        memmove(b->lines, b->lines + 1, (b->n_lines - 1) * sizeof(*b->lines));
        b->n_lines--;
        b->dropped++;
    }
    if (!b->lines && !(b->lines = calloc(BUILD_MAX_LINES, sizeof(*b->lines))))
        return;
    char *copy = strdup(line);
    if (copy)
        b->lines[b->n_lines++] = copy;
}

static void progress(struct tmpl_build *b, pthread_mutex_t *lock, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void progress(struct tmpl_build *b, pthread_mutex_t *lock, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(lock);
    add_line_locked(b, line);
    pthread_mutex_unlock(lock);
}

int tmpl_build_fail(struct tmpl_build *b, pthread_mutex_t *lock, const char *fmt, ...)
{
    char msg[sizeof(b->error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(lock);
    if (!b->error[0])
        snprintf(b->error, sizeof(b->error), "%s", msg);
    add_line_locked(b, msg);
    pthread_mutex_unlock(lock);
    return -EIO;
}

void tmpl_build_finish(struct tmpl_build *b, bool ok)
{
    b->state = ok ? BUILD_SUCCEEDED : BUILD_FAILED;
    b->finished_ms = now_wall_ms();
    if (!ok && !b->error[0])
        snprintf(b->error, sizeof(b->error), "build failed");
}

void tmpl_build_cancel(struct tmpl_build *b)
{
    b->cancelled = true;
    if (b->child > 0)
        kill(-b->child, SIGKILL);
}

/* ---- running a tool */

/* child (of a multi-threaded process: raw syscalls until execve) */
static void tool_child(int out_fd, char *const argv[])
{
    static char *const env[] = {
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/root", "TMPDIR=/tmp",
        "DEBIAN_FRONTEND=noninteractive", "SOURCE_DATE_EPOCH=" SOURCE_DATE_EPOCH, NULL,
    };
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        _exit(126);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(126);
    execve(argv[0], argv, env);
    _exit(127);
}

/* Run argv; every output line becomes a progress line. 0 if it exited 0. */
static int run_tool(struct tmpl_build *b, pthread_mutex_t *lock, char *const argv[])
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return tmpl_build_fail(b, lock, "pipe: %s", strerror(errno));
    pthread_mutex_lock(lock);
    if (b->cancelled) {
        pthread_mutex_unlock(lock);
        close(pfd[0]);
        close(pfd[1]);
        return tmpl_build_fail(b, lock, "cancelled: the daemon is stopping");
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        /* dup2 clears CLOEXEC on the copies 1 and 2 */
        tool_child(pfd[1], argv);
    }
    if (pid > 0)
        b->child = pid;
    pthread_mutex_unlock(lock);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return tmpl_build_fail(b, lock, "fork %s: %s", argv[0], strerror(errno));
    }
    FILE *f = fdopen(pfd[0], "r");
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
            if (n > 0)
                progress(b, lock, "%s", line);
        }
        free(line);
        fclose(f);
    } else {
        close(pfd[0]);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(lock);
    b->child = 0;
    bool cancelled = b->cancelled;
    pthread_mutex_unlock(lock);
    if (cancelled)
        return tmpl_build_fail(b, lock, "cancelled: the daemon is stopping");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return tmpl_build_fail(b, lock, "%s: cannot run it (is it installed? make deps)", argv[0]);
    if (WIFEXITED(status))
        return tmpl_build_fail(b, lock, "%s failed with exit status %d", argv[0], WEXITSTATUS(status));
    return tmpl_build_fail(b, lock, "%s was killed by signal %d", argv[0], WTERMSIG(status));
}

/* ---- the steps */

static int mmdebstrap(struct tmpl_build *b, pthread_mutex_t *lock, const char *root)
{
    json_t *spec = b->spec;
    cleanup_free char *include = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&include, &len);
    if (!f)
        return tmpl_build_fail(b, lock, "out of memory");
    fputs("--include=", f);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "packages"), i, p)
        fprintf(f, "%s%s", i ? "," : "", json_string_value(p));
    fclose(f);
    char *argv[] = {
        MMDEBSTRAP,
        "--mode=root",
        /* Essential:yes packages and what the spec asks for: no apt, so no
         * package manager that could reach a network inside a sandbox */
        "--variant=essential",
        "--format=directory",
        "--keyring=" KEYRING,
        include,
        "--aptopt=Acquire::Languages \"none\"",
        "--aptopt=APT::Install-Recommends \"false\"",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        /* licenses stay: a vetted image says what it is allowed to ship */
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        (char *)json_string_value(json_object_get(spec, "suite")),
        (char *)root,
        (char *)json_string_value(json_object_get(spec, "mirror")),
        NULL,
    };
    return run_tool(b, lock, argv);
}

/* Resolve rel inside the tree at rootfd, never leaving it (absolute symlinks
 * in the tree are resolved against the tree, not the host). */
static int open_in_root(int rootfd, const char *rel, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .mode = mode, .resolve = RESOLVE_IN_ROOT};
    return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
}

static int write_spec_file(int rootfd, const char *path, const char *content, unsigned mode)
{
    char rel[PATH_MAX];
    strfmt(rel, sizeof(rel), "%s", path + 1);
    /* parents, one component at a time */
    for (char *slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        char *last = strrchr(rel, '/');
        int parent = last ? (*last = '\0', open_in_root(rootfd, rel, O_PATH | O_DIRECTORY, 0)) : dup(rootfd);
        if (last)
            *last = '/';
        if (parent < 0)
            return -errno;
        int r = mkdirat(parent, last ? last + 1 : rel, 0755) < 0 && errno != EEXIST ? -errno : 0;
        close(parent);
        *slash = '/';
        if (r < 0)
            return r;
    }
    cleanup_fd int fd = open_in_root(rootfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    int r = write_all(fd, content, strlen(content));
    if (r == 0 && fchmod(fd, mode) < 0) /* the umask does not decide */
        r = -errno;
    return r;
}

static int add_files(struct tmpl_build *b, pthread_mutex_t *lock, const char *root)
{
    json_t *files = json_object_get(b->spec, "files");
    if (json_array_size(files) == 0)
        return 0;
    cleanup_fd int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return tmpl_build_fail(b, lock, "open %s: %s", root, strerror(errno));
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *path = json_string_value(json_object_get(f, "path"));
        unsigned mode = (unsigned)strtoul(json_string_value(json_object_get(f, "mode")), NULL, 8);
        int r = write_spec_file(rootfd, path, json_string_value(json_object_get(f, "content")), mode);
        if (r < 0)
            return tmpl_build_fail(b, lock, "write %s: %s", path, strerror(-r));
        progress(b, lock, "added %s (mode %04o)", path, mode);
    }
    return 0;
}

/* Every installed package and version, from the tree's dpkg status file. */
static json_t *installed_packages(const char *root)
{
    char path[PATH_MAX];
    strfmt(path, sizeof(path), "%s/var/lib/dpkg/status", root);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    json_t *arr = json_array();
    char *line = NULL, pkg[256] = "", ver[256] = "", arch[64] = "";
    bool installed = false;
    size_t cap = 0;
    ssize_t n;
    for (;;) {
        n = getline(&line, &cap, f);
        if (n >= 0)
            while (n > 0 && line[n - 1] == '\n')
                line[--n] = '\0';
        if (n <= 0) { /* end of a paragraph */
            if (pkg[0] && installed)
                json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "name", pkg, "version", ver, "arch", arch));
            pkg[0] = ver[0] = arch[0] = '\0';
            installed = false;
            if (n < 0)
                break;
            continue;
        }
        if (strncmp(line, "Package: ", 9) == 0)
            strfmt(pkg, sizeof(pkg), "%s", line + 9);
        else if (strncmp(line, "Version: ", 9) == 0)
            strfmt(ver, sizeof(ver), "%s", line + 9);
        else if (strncmp(line, "Architecture: ", 14) == 0)
            strfmt(arch, sizeof(arch), "%s", line + 14);
        else if (strncmp(line, "Status: ", 8) == 0)
            installed = strcmp(line + 8, "install ok installed") == 0;
    }
    free(line);
    fclose(f);
    return arr;
}

static int erofs_image(struct tmpl_build *b, pthread_mutex_t *lock, const char *root, const char *image,
                       const char *tree_hash)
{
    /* a UUID from the tree hash: the same tree gives the same image bytes */
    const char *h = tree_hash + 7;
    char uuid[64], ts[32];
    strfmt(uuid, sizeof(uuid), "-U%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    strfmt(ts, sizeof(ts), "-T%s", SOURCE_DATE_EPOCH);
    /* lz4hc: about half the size (python: 78 instead of 145 MB) for ~10% more
     * build time; decompressing lz4 costs a VM little */
    char *argv[] = {MKFS_EROFS, "--quiet", "-zlz4hc", uuid, ts, (char *)image, (char *)root, NULL};
    return run_tool(b, lock, argv);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void iso_time(uint64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_manifest(const char *dir, json_t *manifest)
{
    char path[PATH_MAX];
    strfmt(path, sizeof(path), "%s/manifest.json", dir);
    return json_dump_file(manifest, path, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 ? 0 : -EIO;
}

/* Build into dir/root from the Debian archive. */
static int build_fresh(struct tmpl_build *b, pthread_mutex_t *lock, const char *dir, json_t **manifest)
{
    char root[PATH_MAX], image[PATH_MAX];
    strfmt(root, sizeof(root), "%s/root", dir);
    strfmt(image, sizeof(image), "%s/image.erofs", dir);
    uint64_t t0 = now_mono_ms();
    progress(b, lock, "mmdebstrap %s from %s (signatures checked with %s)",
             json_string_value(json_object_get(b->spec, "suite")),
             json_string_value(json_object_get(b->spec, "mirror")), KEYRING);
    int r = mmdebstrap(b, lock, root);
    if (r < 0)
        return r;
    char err[512] = "";
    int n = tree_sanitize(root, err, sizeof(err));
    if (n < 0)
        return tmpl_build_fail(b, lock, "sanitize: %s", err);
    progress(b, lock, "removed set-user-ID/set-group-ID bits and file capabilities from %d file(s)", n);
    if ((r = add_files(b, lock, root)) < 0)
        return r;
    json_t *pkgs = installed_packages(root);
    if (!pkgs)
        return tmpl_build_fail(b, lock, "read %s/var/lib/dpkg/status: %s", root, strerror(errno));
    progress(b, lock, "%zu packages installed", json_array_size(pkgs));

    char hash[TREE_HASH_LEN + 1];
    struct tree_stats st;
    if (tree_hash(root, hash, &st, err, sizeof(err)) < 0) {
        json_decref(pkgs);
        return tmpl_build_fail(b, lock, "tree hash: %s", err);
    }
    progress(b, lock, "tree hash %s (%llu files, %llu bytes)", hash, (unsigned long long)st.files,
             (unsigned long long)st.bytes);
    progress(b, lock, "exporting the tree as an erofs image for the vm backend");
    if ((r = erofs_image(b, lock, root, image, hash)) < 0) {
        json_decref(pkgs);
        return r;
    }
    uint64_t built = now_wall_ms();
    char when[32];
    iso_time(built, when, sizeof(when));
    json_t *spec = b->spec;
    *manifest = json_pack(
        "{s:s,s:O,s:O,s:O,s:s,s:s,s:O,s:s,s:I,s:f,s:o,s:I,s:I,s:I,s:{s:s,s:s,s:I},s:O,s:O,s:O,s:s}", "name", b->name,
        "description", json_object_get(spec, "description"), "suite", json_object_get(spec, "suite"), "mirror",
        json_object_get(spec, "mirror"), "spec_hash", b->spec_hash, "tree_hash", hash, "spec", spec, "built_at",
        when, "built_at_ms", (json_int_t)built, "build_seconds", (double)(now_mono_ms() - t0) / 1000.0, "packages",
        pkgs, "files", (json_int_t)st.files, "dirs", (json_int_t)st.dirs, "size_bytes", (json_int_t)st.bytes,
        "image", "format", "erofs-lz4hc", "path", "image.erofs", "bytes", (json_int_t)file_size(image), "warmup",
        json_object_get(spec, "warmup"), "env", json_object_get(spec, "env"), "limits",
        json_object_get(spec, "limits"), "builder", TMPL_BUILDER_VERSION);
    if (!*manifest)
        return tmpl_build_fail(b, lock, "out of memory");
    if (write_manifest(dir, *manifest) < 0)
        return tmpl_build_fail(b, lock, "write %s/manifest.json", dir);
    return 0;
}

static int copy_path(struct tmpl_build *b, pthread_mutex_t *lock, const char *from, const char *to)
{
    char *argv[] = {CP, "-a", "--reflink=auto", (char *)from, (char *)to, NULL};
    return run_tool(b, lock, argv);
}

/* A tree the cache has for this spec hash, copied into dir and checked
 * against the hash its manifest records. 0, or 1 if there is none (or it
 * is damaged: then it is removed and the caller builds). */
static int from_cache(struct tmpl_build *b, pthread_mutex_t *lock, const char *cdir, const char *dir,
                      json_t **manifest)
{
    char path[PATH_MAX], to[PATH_MAX];
    strfmt(path, sizeof(path), "%s/manifest.json", cdir);
    json_error_t jerr;
    json_t *m = json_load_file(path, 0, &jerr);
    const char *recorded = json_string_value(json_object_get(m, "tree_hash"));
    if (!m || !recorded) {
        json_decref(m);
        return 1;
    }
    progress(b, lock, "cache hit: %s (built %s)", cdir, json_string_value(json_object_get(m, "built_at")));
    strfmt(path, sizeof(path), "%s/root", cdir);
    strfmt(to, sizeof(to), "%s/root", dir);
    int r = copy_path(b, lock, path, to);
    strfmt(path, sizeof(path), "%s/image.erofs", cdir);
    strfmt(to, sizeof(to), "%s/image.erofs", dir);
    if (r == 0)
        r = copy_path(b, lock, path, to);
    char hash[TREE_HASH_LEN + 1], err[512] = "";
    strfmt(to, sizeof(to), "%s/root", dir);
    if (r == 0 && (r = tree_hash(to, hash, NULL, err, sizeof(err))) < 0)
        progress(b, lock, "cache: tree hash: %s", err);
    if (r == 0 && strcmp(hash, recorded) != 0) {
        progress(b, lock, "cache: the cached tree hashes to %s, its manifest says %s: discarding it", hash, recorded);
        r = -EIO;
    }
    if (r < 0) {
        json_decref(m);
        rmtree(to);
        strfmt(to, sizeof(to), "%s/image.erofs", dir);
        unlink(to);
        int q = rmtree(cdir);
        if (q < 0)
            progress(b, lock, "cache: remove %s: %s", cdir, strerror(-q));
        /* the copy's failure is not the build's */
        pthread_mutex_lock(lock);
        b->error[0] = '\0';
        pthread_mutex_unlock(lock);
        return 1;
    }
    progress(b, lock, "cache: tree hash %s verified", hash);
    /* the record is this build's: same spec, so the same name */
    json_object_set_new(m, "name", json_string(b->name));
    *manifest = m;
    pthread_mutex_lock(lock);
    b->cache_hit = true;
    pthread_mutex_unlock(lock);
    return write_manifest(dir, m) < 0 ? tmpl_build_fail(b, lock, "write %s/manifest.json", dir) : 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    strfmt(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(tmp, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* Save a fresh build for the next daemon with the same spec; a failure here
 * only costs a later rebuild. */
static void save_to_cache(struct tmpl_build *b, pthread_mutex_t *lock, const char *dir, const char *cache_dir,
                          const char *cdir)
{
    char tmp[PATH_MAX];
    strfmt(tmp, sizeof(tmp), "%s/.tmp-%s", cache_dir, b->id);
    int r = mkdir_p(cache_dir, 0700);
    if (r < 0) {
        progress(b, lock, "cache: mkdir %s: %s (not cached)", cache_dir, strerror(-r));
        return;
    }
    if (copy_path(b, lock, dir, tmp) < 0) {
        rmtree(tmp);
        pthread_mutex_lock(lock);
        b->error[0] = '\0';
        pthread_mutex_unlock(lock);
        return;
    }
    rmtree(cdir); /* a damaged entry, or a lost race: ours is as good */
    if (rename(tmp, cdir) < 0) {
        progress(b, lock, "cache: rename to %s: %s (not cached)", cdir, strerror(errno));
        rmtree(tmp);
        return;
    }
    progress(b, lock, "cached as %s", cdir);
}

int tmpl_build_run(struct tmpl_build *b, const char *store_dir, const char *cache_dir, pthread_mutex_t *lock,
                   json_t **manifest)
{
    pthread_mutex_lock(lock);
    b->started_ms = now_wall_ms();
    pthread_mutex_unlock(lock);
    progress(b, lock, "building template %s (spec %s)", b->name, b->spec_hash);

    char dir[PATH_MAX], cdir[PATH_MAX] = "";
    strfmt(dir, sizeof(dir), "%s/.build-%s", store_dir, b->id);
    if (mkdir(dir, 0755) < 0)
        return tmpl_build_fail(b, lock, "mkdir %s: %s", dir, strerror(errno));
    if (cache_dir && cache_dir[0])
        strfmt(cdir, sizeof(cdir), "%s/%s", cache_dir, b->spec_hash + 7);

    int r = 1;
    if (cdir[0] && b->use_cache)
        r = from_cache(b, lock, cdir, dir, manifest);
    if (r == 1) {
        r = build_fresh(b, lock, dir, manifest);
        if (r == 0 && cdir[0])
            save_to_cache(b, lock, dir, cache_dir, cdir);
    }
    if (r < 0) {
        rmtree(dir);
        return r;
    }
    const char *hash = json_string_value(json_object_get(*manifest, "tree_hash"));
    pthread_mutex_lock(lock);
    snprintf(b->tree_hash, sizeof(b->tree_hash), "%s", hash);
    pthread_mutex_unlock(lock);

    /* content-addressed: an existing directory of this hash holds the same tree */
    char final[PATH_MAX];
    strfmt(final, sizeof(final), "%s/%s", store_dir, hash + 7);
    if (rename(dir, final) < 0) {
        if (errno != ENOTEMPTY && errno != EEXIST) {
            int e = errno;
            rmtree(dir);
            json_decref(*manifest);
            *manifest = NULL;
            return tmpl_build_fail(b, lock, "rename %s to %s: %s", dir, final, strerror(e));
        }
        /* ... unless it was damaged since: then the new copy replaces it */
        char have[TREE_HASH_LEN + 1] = "", err[512] = "", old[PATH_MAX];
        if (tree_hash(final, have, NULL, err,
                      sizeof(err)) == 0 &&
            strcmp(have, hash) == 0) {
            write_manifest(final, *manifest);
            rmtree(dir);
            progress(b, lock, "the store already holds this tree: %s", final);
            return 0;
        }
        strfmt(old, sizeof(old), "%s/.damaged-%s", store_dir, b->id);
        progress(b, lock, "the stored copy %s is damaged (%s): replacing it", final, have[0] ? have : err);
        if (rename(final, old) < 0 || rename(dir, final) < 0) {
            int e = errno;
            rmtree(dir);
            json_decref(*manifest);
            *manifest = NULL;
            return tmpl_build_fail(b, lock, "replace %s: %s", final, strerror(e));
        }
        rmtree(old);
        progress(b, lock, "stored as %s", final);
    } else {
        progress(b, lock, "stored as %s", final);
    }
    return 0;
}
