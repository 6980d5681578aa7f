/* fuzz.h - what every harness in fuzz/ provides and shares.
 *
 * Each harness defines the two libFuzzer entry points. Built with
 * -Dfuzz=true (clang) they are driven by libFuzzer (`make fuzz`); in every
 * build they are also linked with replay.c, which feeds them the saved
 * inputs (meson test suite "fuzz"). A harness reports a finding by
 * crashing: FUZZ_CHECK aborts, and ASan/UBSan do the rest. */
#ifndef AIRLOCK_FUZZ_H
#define AIRLOCK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Remove the scratch directory (if registered), then abort(): libFuzzer
 * saves the input, and no scratch is left behind (atexit does not run). */
void fuzz_fail(void) __attribute__((noreturn));
/* The harness's scratch directory, for fuzz_fail. */
void fuzz_scratch_register(const char *dir);

/* An invariant of the code under test; abort() so libFuzzer saves the input. */
#define FUZZ_CHECK(cond, ...)                                                     \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            fuzz_fail();                                                          \
        }                                                                         \
    } while (0)

/* A failure of the harness's own setup (not a finding): say so and exit. */
#define FUZZ_SETUP(cond, ...)                                      \
    do {                                                           \
        if (!(cond)) {                                             \
            fprintf(stderr, "fuzz setup: " __VA_ARGS__);           \
            fputc('\n', stderr);                                   \
            exit(2);                                               \
        }                                                          \
    } while (0)

/* Where harnesses put their scratch files: $FUZZ_TMPDIR, else /dev/shm, else /tmp. */
const char *fuzz_tmpdir(void);
/* rm -rf path (never following symlinks). 0 or -errno. */
int fuzz_rm_rf(const char *path);

/* Feed len bytes into fd in pieces whose sizes come from `schedule` (the
 * reader must see every split a real stream can produce), then shut down
 * the write side. Runs on its own thread; fuzz_writer_join waits for it. */
struct fuzz_writer;
int fuzz_writer_start(int fd, const uint8_t *data, size_t len, const uint8_t *schedule, size_t schedule_len,
                      struct fuzz_writer **out);
void fuzz_writer_join(struct fuzz_writer *w);

#endif
