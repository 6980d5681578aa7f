/* anonlock.c - the one inode every eventfd on the host shares, made useless
 * as a channel.
 *
 * eventfd, epoll, timerfd, signalfd and inotify descriptors are files of a
 * single kernel-wide anonymous inode (anon_inode_getfd): fstat shows the
 * same st_ino in every process. File locks live on the inode, so a flock()
 * or an OFD lock one sandbox takes on its own eventfd is seen by every other
 * sandbox's eventfd (LOCK_NB fails; F_OFD_GETLK reports the lock's start:
 * 63 bits per read), and by the host. The jail cannot give a sandbox its
 * own anonymous inode, and seccomp cannot tell an eventfd from a file.
 *
 * So the daemon takes every lock there is to take on that inode first and
 * holds it for its lifetime: an exclusive flock and an OFD write lock over
 * the whole range. Every lock a sandbox then tries on any anonymous-inode
 * descriptor fails the same way (EWOULDBLOCK / EAGAIN), and F_OFD_GETLK
 * always reports the daemon's lock: a constant carries no bits. (fsnotify
 * is no channel there: pseudo files carry FMODE_NONOTIFY.) A blocking lock
 * on an eventfd would wait until the daemon exits; no program locks one.
 *
 * When another airlockd holds the locks already, a thread waits for them,
 * so the inode is covered after that daemon exits too.
 */
#include "jail.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>

#include "log.h"

static int take_locks(int fd, bool wait)
{
    if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0)
        return -errno;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    for (;;) {
        if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Owns its descriptor for the rest of the process's life. */
static void *wait_for_locks(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int r = take_locks(fd, true);
    if (r < 0)
        log_warn("jail: anonymous-inode locks: %s; sandboxes can signal each other through eventfd locks",
                 strerror(-r));
    else
        log_info("jail: anonymous-inode locks taken over from the daemon that held them");
    return NULL; /* fd stays open: the locks are held until exit */
}

int anonlock_hold(int *out, char *err, size_t errlen)
{
    *out = -1;
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0)
        return jail_err(err, errlen, -errno, "eventfd");
    int r = take_locks(fd, false);
    if (r == 0) {
        *out = fd;
        return 0;
    }
    if (r != -EWOULDBLOCK && r != -EAGAIN) {
        close(fd);
        return jail_err(err, errlen, r, "lock the anonymous inode");
    }
    /* another daemon (or any process) holds them: wait in the background;
     * the locks are then ours until exit, so fd is the thread's */
    flock(fd, LOCK_UN);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &attr, wait_for_locks, (void *)(intptr_t)fd);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        close(fd);
        return jail_err(err, errlen, -e, "start the anonymous-inode lock waiter");
    }
    log_info("jail: anonymous-inode locks are held by another process (another airlockd?); waiting for them");
    return 0;
}
