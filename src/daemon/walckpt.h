/* walckpt.h - the store's WAL checkpoints, off the request path (walckpt.c). */
#ifndef AIRLOCK_WALCKPT_H
#define AIRLOCK_WALCKPT_H

#include <sqlite3.h>

struct walckpt;

/* Open a second connection to the database at path, start the checkpoint
 * thread and hook main_db's commits (main_db stops checkpointing itself).
 * Call with main_db in WAL mode and before other threads use it. */
int walckpt_start(const char *path, sqlite3 *main_db, struct walckpt **out);
/* Unhook main_db (its automatic checkpoints come back), stop the thread,
 * close our connection. Call when no other thread uses main_db. NULL: no-op. */
void walckpt_stop(struct walckpt *w);

#endif
