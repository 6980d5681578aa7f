/* fuzz_util.c - helpers shared by the harnesses: scratch directories and a
 * stream writer thread that splits its input the way a real peer might. */
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

const char *fuzz_tmpdir(void)
{
    const char *t = getenv("FUZZ_TMPDIR");
    if (t && *t)
        return t;
    /* tmpfs: fuzz_agent rebuilds its scratch root for every input, four
     * times faster there than on a disk file system */
    return access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
}

static char scratch_dir[4096];

void fuzz_scratch_register(const char *dir)
{
    snprintf(scratch_dir, sizeof(scratch_dir), "%s", dir);
}

void fuzz_fail(void)
{
    if (scratch_dir[0])
        (void)fuzz_rm_rf(scratch_dir);
    abort();
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = type == FTW_DP ? rmdir(path) : unlink(path);
    return r < 0 && errno != ENOENT ? -errno : 0;
}

int fuzz_rm_rf(const char *path)
{
    /* FTW_PHYS: a symlink is removed, never followed */
    int r = nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (r < 0 && errno == ENOENT)
        return 0;
    return r < 0 ? -errno : r;
}

struct fuzz_writer {
    pthread_t thread;
    int fd;
    const uint8_t *data;
    size_t len;
    const uint8_t *schedule;
    size_t schedule_len;
};

/* Sizes 1..128 exercise every split of a header; larger ones split payloads. */
static size_t chunk_size(const struct fuzz_writer *w, size_t i)
{
    if (w->schedule_len == 0)
        return w->len;
    uint8_t s = w->schedule[i % w->schedule_len];
    return s < 128 ? (size_t)s + 1 : (size_t)(s - 127) * 512;
}

/* Write the data, and read (and drop) whatever the other side sends, until
 * it closes: a peer that answers must never block on a full socket. */
static void *writer_main(void *arg)
{
    struct fuzz_writer *w = arg;
    size_t off = 0, chunks = 0;
    bool write_open = true;
    for (;;) {
        struct pollfd p = {.fd = w->fd, .events = POLLIN | (write_open ? POLLOUT : 0)};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p.revents & POLLIN) {
            char sink[65536];
            ssize_t n = recv(w->fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break; /* the reader closed: done */
        }
        if (write_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            size_t want = chunk_size(w, chunks);
            if (want > w->len - off)
                want = w->len - off;
            ssize_t n = want ? send(w->fd, w->data + off, want, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                write_open = false; /* the reader stopped reading (it hung up) */
                (void)shutdown(w->fd, SHUT_WR);
            } else if (n > 0) {
                off += (size_t)n;
                chunks++;
            }
            if (write_open && off == w->len) {
                write_open = false;
                (void)shutdown(w->fd, SHUT_WR); /* EOF for the reader */
            }
        } else if (!write_open && (p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN)) {
            break;
        }
    }
    return NULL;
}

int fuzz_writer_start(int fd, const uint8_t *data, size_t len, const uint8_t *schedule, size_t schedule_len,
                      struct fuzz_writer **out)
{
    struct fuzz_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    *w = (struct fuzz_writer){.fd = fd, .data = data, .len = len, .schedule = schedule, .schedule_len = schedule_len};
    int r = pthread_create(&w->thread, NULL, writer_main, w);
    if (r != 0) {
        free(w);
        return -r;
    }
    *out = w;
    return 0;
}

void fuzz_writer_join(struct fuzz_writer *w)
{
    if (!w)
        return;
    pthread_join(w->thread, NULL);
    free(w);
}
