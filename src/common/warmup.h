/* warmup.h - the `host` template's default warm-up: what a sandbox's Python
 * has imported before its first call, whichever way it got there (the
 * jail's zygote, src/zygote/; the vm backend's snapshot, src/vm/snapshot.c). */
#ifndef AIRLOCK_WARMUP_H
#define AIRLOCK_WARMUP_H

extern const char default_warmup[];

#endif
