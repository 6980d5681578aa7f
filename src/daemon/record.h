/* record.h - a sandbox's state record and its API object (record.c); for
 * the registry. */
#ifndef AIRLOCK_RECORD_H
#define AIRLOCK_RECORD_H

#include <stdbool.h>

#include <jansson.h>

#include "store.h"

struct sandbox;

/* The API sandbox object of rec; show_owner: only admins learn which key
 * owns a sandbox ("key_id"). NULL if out of memory. */
json_t *sandbox_record_json(const struct sandbox_record *rec, bool show_owner);
/* rec from sb (the caller holds the registry lock, for the timeout and
 * expiry, unless sb is not shared yet); metadata is borrowed. */
void sandbox_fill_record(const struct sandbox *sb, struct sandbox_record *rec, char *metadata);
/* "sb_" and 32 lowercase hex digits. */
bool sandbox_id_valid(const char *id);

#endif
