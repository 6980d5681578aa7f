/* util.h - small helpers shared by every Airlock binary.
 *
 * Ownership is made visible at the declaration with GCC cleanup attributes
 * (the bubblewrap/systemd idiom): a `cleanup_free char *p` is freed when it
 * leaves scope, and `steal_ptr(&p)` hands it to the caller instead.
 * Functions inside Airlock return 0 (or a count) on success and -errno on
 * failure; the layer that decides what to do logs once, with context.
 */
#ifndef AIRLOCK_UTIL_H
#define AIRLOCK_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline void util_freep(void *p) { free(*(void **)p); }
static inline void util_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

#define cleanup_free __attribute__((cleanup(util_freep)))
#define cleanup_fd __attribute__((cleanup(util_closep)))

static inline void *util_steal_ptr(void *pp)
{
    void **p = pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define steal_ptr(pp) util_steal_ptr(pp)

static inline int steal_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))

/* Write all of buf, retrying on EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes. 0, -errno, or -EPIPE on EOF before len. */
int read_exact(int fd, void *buf, size_t len);
/* Write a small string to a file (cgroup knobs, uid_map...). 0 or -errno. */
int write_file(const char *path, const char *data);
/* Read at most cap-1 bytes of a small file into buf, NUL-terminated. */
int read_file_small(const char *path, char *buf, size_t cap);
/* Fill buf with hex of n random bytes (getrandom). buf must hold 2n+1. */
int random_hex(char *buf, size_t nbytes);
/* snprintf that says whether it fit: 0, or -ENAMETOOLONG when buf (len)
 * was too small (paths built from a configured directory). */
int strfmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Monotonic and wall clocks in milliseconds. */
uint64_t now_mono_ms(void);
/* A condition variable whose timed waits count on CLOCK_MONOTONIC (a step of
 * the wall clock must neither stretch nor cut a timeout), and the deadline
 * such a wait takes: now_mono_ms()-based milliseconds as a timespec. */
void cond_init_monotonic(pthread_cond_t *c);
struct timespec mono_deadline(uint64_t mono_ms);
uint64_t now_mono_us(void); /* for durations logged below a millisecond */
uint64_t now_wall_ms(void);

/* Give the calling thread the nice value of the process's main thread (a
 * thread started by a lowered thread, such as the warm pool's builder,
 * inherits the lower priority). 0 or -errno. */
int thread_nice_as_process(void);

/* A descriptor number given on a command line (0-65535): 0, or -EINVAL. */
int parse_fd_arg(const char *s, int *out);

/* One sendmsg of len bytes with nfds (<= SEND_FDS_MAX) descriptors attached
 * as SCM_RIGHTS, retried on EINTR. flags are sendmsg's (MSG_NOSIGNAL is
 * always added). 0 once all len bytes went, -EIO for fewer, else -errno. */
#define SEND_FDS_MAX 8
int send_with_fds(int sock, const void *msg, size_t len, const int *fds, size_t nfds, int flags);

#endif
