/* guest.c - the agent as /init of a vm-backend guest (docs/vm.md).
 *
 * Under the vm backend the agent is the first and only program of the
 * guest: the kernel runs it from the initramfs as /init, and it builds the
 * sandbox's world itself before serving the usual protocol. The order:
 *
 *   1. devtmpfs /dev, proc /proc, sysfs /sys in the initramfs
 *   2. the kernel modules in /modules, in file-name order (the initramfs
 *      builder, vm/build-initramfs.sh, numbers them so each module's
 *      `depends=` come first); microvm describes its virtio-mmio devices
 *      through ACPI, which the kernel finds once virtio_mmio is loaded
 *   3. the template's root image, /dev/vda (erofs, read-only), at /img
 *   4. the sandbox root, a tmpfs at /newroot laid out like the jail's
 *      (src/jail/mnt.c): /usr from the image, bin/lib symlinks, a generated
 *      /etc with the image's linker cache and alternatives bound in, the
 *      runner at /opt/airlock, one size-capped tmpfs behind /tmp, /data,
 *      /home/user and /dev/shm, a small /dev, a fresh /proc, and a /sys
 *      holding only devices/system/cpu/{online,possible,present}, copied
 *      from the guest kernel's: the jail's view (src/jail/sysview.c), so
 *      glibc's sysconf and os.cpu_count() read the guest's vCPUs the same
 *      way in both backends and nothing else of the guest's sysfs shows
 *   5. the virtio serial port named "airlock.agent" opened as the control
 *      stream (the host end is QEMU's chardev, connected to airlockd)
 *   6. /newroot moved onto / and chrooted into; the initramfs stays under it,
 *      unreachable without CAP_SYS_CHROOT, which user code never has
 *
 * Everything the sandbox writes lives in that tmpfs, in guest RAM: it dies
 * with the VM. Parameters come from the kernel command line (the kernel
 * hands init only the words without a dot, so they are read from
 * /proc/cmdline): airlock.scratch=BYTES (the tmpfs cap), airlock.mem=BYTES
 * (the guest's memory, for the spawn policy), airlock.pids=N (the jail's
 * pids.max, here RLIMIT_NPROC of uid 1000: only user code runs as it),
 * airlock.hostname=NAME.
 *
 * Failures are fatal and printed to the kernel log (/dev/kmsg), which the
 * daemon keeps from the VM's console for its error message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "sandbox_etc.h"
#include "util.h"

#define GUEST_PORT_NAME "airlock.agent"
#define GUEST_WAIT_MS 10000 /* for a device to appear after its module loaded */

struct guest_params {
    unsigned long long scratch_bytes;
    unsigned long long mem_bytes;
    unsigned long long pids;
    char hostname[64];
};

static int gerr(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int gerr(char *err, size_t errlen, int r, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", what, strerror(-r));
    return r;
}

static int mkdir_p1(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data,
                    char *err, size_t errlen)
{
    int r = mkdir_p1(dst, 0755);
    if (r < 0)
        return gerr(err, errlen, r, "mkdir %s", dst);
    if (mount(src, dst, type, flags, data) < 0)
        return gerr(err, errlen, -errno, "mount %s on %s", type ? type : src, dst);
    return 0;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
    cleanup_fd int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    return write_all(fd, text, strlen(text));
}

static void parse_cmdline(struct guest_params *gp)
{
    char buf[4096];
    snprintf(gp->hostname, sizeof(gp->hostname), "sandbox");
    if (read_file_small("/proc/cmdline", buf, sizeof(buf)) < 0)
        return;
    for (char *save = NULL, *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
        if (strncmp(w, "airlock.scratch=", 16) == 0)
            gp->scratch_bytes = strtoull(w + 16, NULL, 10);
        else if (strncmp(w, "airlock.mem=", 12) == 0)
            gp->mem_bytes = strtoull(w + 12, NULL, 10);
        else if (strncmp(w, "airlock.pids=", 13) == 0)
            gp->pids = strtoull(w + 13, NULL, 10);
        else if (strncmp(w, "airlock.hostname=", 17) == 0 && w[17])
            snprintf(gp->hostname, sizeof(gp->hostname), "%s", w + 17);
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every .ko in /modules, in name order. EEXIST (built in, or loaded twice)
 * is fine; anything else names the module. */
static int load_modules(char *err, size_t errlen)
{
    DIR *d = opendir("/modules");
    if (!d)
        return errno == ENOENT ? 0 : gerr(err, errlen, -errno, "opendir /modules");
    char *names[64];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < ARRAY_SIZE(names)) {
        size_t len = strlen(de->d_name);
        if (len > 3 && strcmp(de->d_name + len - 3, ".ko") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), name_cmp);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (r == 0 && names[i]) {
            char path[300];
            snprintf(path, sizeof(path), "/modules/%s", names[i]);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                r = gerr(err, errlen, -errno, "open %s", path);
            else if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
                r = gerr(err, errlen, -errno, "finit_module %s", path);
            if (fd >= 0)
                close(fd);
        } else if (!names[i]) {
            r = gerr(err, errlen, -ENOMEM, "list /modules");
        }
        free(names[i]);
    }
    return r;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Devices are probed asynchronously after their driver loads. */
static int wait_for(const char *path, char *err, size_t errlen)
{
    for (int waited = 0;; waited += 5) {
        if (access(path, F_OK) == 0)
            return 0;
        if (waited >= GUEST_WAIT_MS)
            return gerr(err, errlen, -ETIMEDOUT, "wait for %s", path);
        sleep_ms(5);
    }
}

/* /sys/class/virtio-ports/vportNpM/name holds the name QEMU's
 * virtserialport was given; the node is /dev/vportNpM. */
static int open_port(char *err, size_t errlen)
{
    for (int waited = 0;; waited += 5) {
        DIR *d = opendir("/sys/class/virtio-ports");
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char path[300], name[64];
            snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
            if (read_file_small(path, name, sizeof(name)) < 0)
                continue;
            name[strcspn(name, "\n")] = '\0';
            if (strcmp(name, GUEST_PORT_NAME) != 0)
                continue;
            snprintf(path, sizeof(path), "/dev/%s", de->d_name);
            closedir(d);
            if (wait_for(path, err, errlen) < 0)
                return -ETIMEDOUT;
            int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
            return fd < 0 ? gerr(err, errlen, -errno, "open %s", path) : fd;
        }
        if (d)
            closedir(d);
        if (waited >= GUEST_WAIT_MS)
            return gerr(err, errlen, -ETIMEDOUT, "find virtio port %s", GUEST_PORT_NAME);
        sleep_ms(5);
    }
}

static int bind_ro(const char *src, const char *dst, bool is_dir, char *err, size_t errlen)
{
    int r = is_dir ? mkdir_p1(dst, 0755) : write_text(dst, "", 0444);
    if (r < 0)
        return gerr(err, errlen, r, "create %s", dst);
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return gerr(err, errlen, -errno, "bind %s on %s", src, dst);
    if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return gerr(err, errlen, -errno, "remount ro %s", dst);
    return 0;
}

/* The sandbox's /etc: the generated files of sandbox_etc.h, the image's
 * linker cache and alternatives bound in read-only, os-release linked. */
static int build_etc(const struct guest_params *gp, char *err, size_t errlen)
{
    char text[256];
    int r = do_mount("tmpfs", "/newroot/etc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m", err,
                     errlen);
    if (r < 0)
        return r;
    snprintf(text, sizeof(text), sandbox_etc_hosts_fmt, gp->hostname);
    char hostname[80];
    snprintf(hostname, sizeof(hostname), sandbox_etc_hostname_fmt, gp->hostname);
    const char *const files[][2] = {{"passwd", sandbox_etc_passwd}, {"group", sandbox_etc_group},
                                    {"nsswitch.conf", sandbox_etc_nsswitch}, {"resolv.conf", ""},
                                    {"hosts", text}, {"hostname", hostname}};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/newroot/etc/%s", files[i][0]);
        if ((r = write_text(path, files[i][1], 0644)) < 0)
            return gerr(err, errlen, r, "write %s", path);
    }
    for (size_t i = 0; i < sandbox_etc_n_host_files; i++) {
        char src[128], dst[128];
        struct stat st;
        snprintf(src, sizeof(src), "/img/etc/%s", sandbox_etc_host_files[i]);
        snprintf(dst, sizeof(dst), "/newroot/etc/%s", sandbox_etc_host_files[i]);
        if (stat(src, &st) < 0)
            continue; /* optional, as in the jail */
        if ((r = bind_ro(src, dst, S_ISDIR(st.st_mode), err, errlen)) < 0)
            return r;
    }
    if (symlink("../usr/lib/os-release", "/newroot/etc/os-release") < 0)
        return gerr(err, errlen, -errno, "symlink /etc/os-release");
    if (mount(NULL, "/newroot/etc", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m") < 0)
        return gerr(err, errlen, -errno, "remount ro /etc");
    return 0;
}

/* One tmpfs behind every writable place, capped below the guest's RAM (the
 * jail's mnt_setup_scratch says why), with the jail's modes and owners. */
static int build_scratch(const struct guest_params *gp, char *err, size_t errlen)
{
    static const struct {
        const char *src, *dst;
        mode_t mode;
        bool user_owned, exec;
    } dirs[] = {
        {"/scratch/tmp", "/newroot/tmp", 01777, false, true},
        {"/scratch/data", "/newroot/data", 0755, true, false},
        {"/scratch/home", "/newroot/home/user", 0755, true, true},
        {"/scratch/shm", "/newroot/dev/shm", 01777, false, false},
    };
    char opts[64];
    snprintf(opts, sizeof(opts), "mode=0700,size=%llu", gp->scratch_bytes ? gp->scratch_bytes : 64ull << 20);
    int r = do_mount("tmpfs", "/scratch", "tmpfs", MS_NOSUID | MS_NODEV, opts, err, errlen);
    if (r < 0)
        return r;
    if ((r = mkdir_p1("/newroot/home", 0755)) < 0)
        return gerr(err, errlen, r, "mkdir /newroot/home");
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        if ((r = mkdir_p1(dirs[i].src, dirs[i].mode)) < 0 || (chmod(dirs[i].src, dirs[i].mode) < 0 && (r = -errno)) ||
            (dirs[i].user_owned && chown(dirs[i].src, AGENT_USER_UID, AGENT_USER_UID) < 0 && (r = -errno)))
            return gerr(err, errlen, r, "prepare %s", dirs[i].src);
        if ((r = mkdir_p1(dirs[i].dst, 0755)) < 0)
            return gerr(err, errlen, r, "mkdir %s", dirs[i].dst);
        if (mount(dirs[i].src, dirs[i].dst, NULL, MS_BIND, NULL) < 0)
            return gerr(err, errlen, -errno, "bind %s on %s", dirs[i].src, dirs[i].dst);
        if (!dirs[i].exec &&
            mount(NULL, dirs[i].dst, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            return gerr(err, errlen, -errno, "remount noexec %s", dirs[i].dst);
    }
    /* the binds keep the superblock; the staging mount goes */
    if (umount2("/scratch", MNT_DETACH) < 0)
        return gerr(err, errlen, -errno, "umount /scratch");
    return 0;
}

/* A /dev of its own: the jail's six nodes, devpts, fd links. The port and
 * the disk are not in it. */
static int build_dev(char *err, size_t errlen)
{
    static const struct {
        const char *name;
        unsigned maj, min;
    } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
    static const char *const links[][2] = {{"pts/ptmx", "ptmx"},
                                           {"/proc/self/fd", "fd"},
                                           {"/proc/self/fd/0", "stdin"},
                                           {"/proc/self/fd/1", "stdout"},
                                           {"/proc/self/fd/2", "stderr"}};
    int r = do_mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", err, errlen);
    if (r < 0)
        return r;
    for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/newroot/dev/%s", nodes[i].name);
        if (mknod(path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0 || chmod(path, 0666) < 0)
            return gerr(err, errlen, -errno, "mknod %s", path);
    }
    for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/newroot/dev/%s", links[i][1]);
        if (symlink(links[i][0], path) < 0)
            return gerr(err, errlen, -errno, "symlink %s", path);
    }
    if ((r = mkdir_p1("/newroot/dev/shm", 0755)) < 0)
        return gerr(err, errlen, r, "mkdir /dev/shm");
    return do_mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620",
                    err, errlen);
}

/* /proc of the whole guest, as the jail's is of its pid namespace: user code
 * (uid 1000) sees only its own processes (hidepid=invisible hides the
 * guest kernel's threads and the agent), and the jail's masks apply
 * (sandbox_etc.c): the guest kernel's symbols, keys and timers are no more
 * readable than the host's are from a jail. */
static int build_proc(char *err, size_t errlen)
{
    int r = do_mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible", err,
                     errlen);
    if (r < 0)
        return r;
    char path[128];
    for (size_t i = 0; sandbox_proc_masked_files[i]; i++) {
        snprintf(path, sizeof(path), "/newroot/%s", sandbox_proc_masked_files[i]);
        if (access(path, F_OK) == 0 && mount("/newroot/dev/null", path, NULL, MS_BIND, NULL) < 0)
            return gerr(err, errlen, -errno, "mask %s", path);
    }
    for (size_t i = 0; sandbox_proc_masked_dirs[i]; i++) {
        snprintf(path, sizeof(path), "/newroot/%s", sandbox_proc_masked_dirs[i]);
        if (access(path, F_OK) == 0 &&
            mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555,size=4k") < 0)
            return gerr(err, errlen, -errno, "mask %s", path);
    }
    for (size_t i = 0; sandbox_proc_read_only[i]; i++) {
        snprintf(path, sizeof(path), "/newroot/%s", sandbox_proc_read_only[i]);
        if (access(path, F_OK) == 0 && (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 ||
                                        mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
                                                                    MS_NOEXEC, NULL) < 0))
            return gerr(err, errlen, -errno, "make %s read-only", path);
    }
    return 0;
}

/* /sys: the guest's CPU lists and nothing else, read-only (the jail's
 * mnt_setup_sys). The values are the guest kernel's own (from the
 * initramfs's sysfs): in a VM the vCPUs are the sandbox's CPUs. */
static int build_sys(char *err, size_t errlen)
{
    static const char *const dirs[] = {"/newroot/sys/devices", "/newroot/sys/devices/system",
                                       "/newroot/sys/devices/system/cpu"};
    static const char *const files[] = {"online", "possible", "present"};
    int r;
    if ((r = mkdir_p1("/newroot/sys", 0555)) < 0)
        return gerr(err, errlen, r, "mkdir /newroot/sys");
    if ((r = do_mount("tmpfs", "/newroot/sys", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555,size=16k", err,
                      errlen)) < 0)
        return r;
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (mkdir(dirs[i], 0555) < 0)
            return gerr(err, errlen, -errno, "mkdir %s", dirs[i]);
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char src[64], dst[64], line[128];
        snprintf(src, sizeof(src), "/sys/devices/system/cpu/%s", files[i]);
        snprintf(dst, sizeof(dst), "/newroot/sys/devices/system/cpu/%s", files[i]);
        if ((r = read_file_small(src, line, sizeof(line))) < 0)
            return gerr(err, errlen, r, "read %s", src);
        if ((r = write_text(dst, line, 0444)) < 0)
            return gerr(err, errlen, r, "write %s", dst);
    }
    if (mount(NULL, "/newroot/sys", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k") < 0)
        return gerr(err, errlen, -errno, "remount ro /sys");
    return 0;
}

static int lo_up(char *err, size_t errlen)
{
    cleanup_fd int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return gerr(err, errlen, -errno, "socket");
    struct ifreq ifr = {0};
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return gerr(err, errlen, -errno, "SIOCGIFFLAGS lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        return gerr(err, errlen, -errno, "SIOCSIFFLAGS lo");
    return 0;
}

static int build_root(const struct guest_params *gp, char *err, size_t errlen)
{
    static const char *const links[][2] = {
        {"usr/bin", "/newroot/bin"}, {"usr/sbin", "/newroot/sbin"}, {"usr/lib", "/newroot/lib"},
        {"usr/lib64", "/newroot/lib64"}};
    int r;
    if ((r = do_mount("/dev/vda", "/img", "erofs", MS_RDONLY | MS_NOSUID | MS_NODEV, NULL, err, errlen)) < 0 ||
        (r = do_mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m", err, errlen)) < 0 ||
        (r = bind_ro("/img/usr", "/newroot/usr", true, err, errlen)) < 0)
        return r;
    for (size_t i = 0; i < ARRAY_SIZE(links); i++)
        if (symlink(links[i][0], links[i][1]) < 0)
            return gerr(err, errlen, -errno, "symlink %s", links[i][1]);
    if ((r = build_etc(gp, err, errlen)) < 0 || (r = mkdir_p1("/newroot/opt", 0755)) < 0 ||
        (r = bind_ro("/opt/airlock", "/newroot/opt/airlock", true, err, errlen)) < 0 || (r = build_dev(err, errlen)) < 0 ||
        (r = build_scratch(gp, err, errlen)) < 0 || (r = build_proc(err, errlen)) < 0 ||
        (r = build_sys(err, errlen)) < 0)
        return r;
    /* nothing more at the top level */
    if (mount(NULL, "/newroot", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m") < 0)
        return gerr(err, errlen, -errno, "remount ro /");
    return 0;
}

/* The initramfs is the kernel's rootfs, which cannot be pivoted away:
 * move the new root over it and chroot (switch_root's method). */
static int enter_root(char *err, size_t errlen)
{
    if (chdir("/newroot") < 0)
        return gerr(err, errlen, -errno, "chdir /newroot");
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
        return gerr(err, errlen, -errno, "move /newroot to /");
    if (chroot(".") < 0)
        return gerr(err, errlen, -errno, "chroot");
    if (chdir("/") < 0)
        return gerr(err, errlen, -errno, "chdir /");
    return 0;
}

static void kmsg(const char *msg)
{
    int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dprintf(fd, "airlock-agent: %s\n", msg);
        close(fd);
    }
}

/* The kernel starts init with fds 0-2 on /dev/console only when the
 * initramfs has that node; a later open must not land on 0-2 either way. */
static void std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int n = open("/dev/console", O_RDWR | O_NOCTTY);
        if (n < 0)
            n = open("/dev/null", O_RDWR);
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

int guest_boot(struct agent *a)
{
    char err[512] = "";
    struct guest_params gp = {0};
    int r;
    if ((r = do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755", err, sizeof(err))) < 0)
        goto fail;
    std_fds();
    if ((r = do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err, sizeof(err))) < 0 ||
        (r = do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err, sizeof(err))) < 0)
        goto fail;
    parse_cmdline(&gp);
    if ((r = load_modules(err, sizeof(err))) < 0 || (r = wait_for("/dev/vda", err, sizeof(err))) < 0 ||
        (r = build_root(&gp, err, sizeof(err))) < 0)
        goto fail;
    int port = open_port(err, sizeof(err));
    if (port < 0) {
        r = port;
        goto fail;
    }
    if ((r = lo_up(err, sizeof(err))) < 0 || (r = enter_root(err, sizeof(err))) < 0)
        goto fail;
    if (sethostname(gp.hostname, strlen(gp.hostname)) < 0) {
        r = gerr(err, sizeof(err), -errno, "sethostname");
        goto fail;
    }
    /* the port's node stays in the initramfs's /dev, out of reach */
    if (port != 3) {
        if (dup3(port, 3, O_CLOEXEC) < 0) {
            r = gerr(err, sizeof(err), -errno, "dup3 port");
            goto fail;
        }
        close(port);
    }
    a->ctl_fd = 3;
    a->guest = true;
    a->memory_limit = gp.mem_bytes;
    a->pids_limit = gp.pids;
    a->root_path = "/";
    return 0;
fail:
    kmsg(err);
    return r;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void guest_sync(struct agent *a, uint32_t req_id, json_t *req)
{
    if (!a->guest) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "GUEST_SYNC is for vm guests only");
        return;
    }
    const char *hex = json_string_value(json_object_get(req, "entropy"));
    json_t *ns = json_object_get(req, "realtime_ns");
    size_t n = hex ? strlen(hex) : 0;
    if (!hex || n % 2 || n > 512 || !json_is_integer(ns) || json_integer_value(ns) <= 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "GUEST_SYNC needs entropy (hex, <= 256 bytes) and realtime_ns");
        return;
    }
    /* struct rand_pool_info ends in a flexible array: room for it after */
    unsigned char raw[sizeof(struct rand_pool_info) + 256] __attribute__((aligned(8))) = {0};
    struct rand_pool_info *pool = (struct rand_pool_info *)raw;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            agent_send_error(a, req_id, PROTO_ERR_INVALID, "entropy is not lower-case hex");
            return;
        }
        ((unsigned char *)pool->buf)[i] = (unsigned char)(hi << 4 | lo);
    }
    pool->buf_size = (int)(n / 2);
    pool->entropy_count = (int)(n / 2 * 8);
    /* credited entropy, then a reseed: the next getrandom draws from a key
     * no other restore of the same snapshot has */
    int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ioctl(fd, RNDADDENTROPY, pool) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "reseed the guest's CRNG: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    json_int_t v = json_integer_value(ns);
    struct timespec ts = {.tv_sec = (time_t)(v / 1000000000), .tv_nsec = (long)(v % 1000000000)};
    if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "set the guest's clock: %s", strerror(errno));
        return;
    }
    agent_send_ok(a, req_id, NULL);
}

/* PID 1 must not return; a guest whose agent is done powers off (QEMU then
 * exits, which the daemon sees). */
void guest_poweroff(void)
{
    sync();
    (void)reboot(RB_POWER_OFF);
    for (;;)
        pause();
}
