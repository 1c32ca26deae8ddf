/*
 * pred-snapshot: declarations shared by the loader's files.
 */

#ifndef PRED_LOADER_H
#define PRED_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include <jansson.h>

#include "pred_snap.h"


#define PRED_LOADER_NAME     "pred-snapshot"
#define PRED_LOADER_VERSION  "0.1.0"

/* exit codes */
#define PRED_EXIT_OK         0
#define PRED_EXIT_FAIL       1    /* bad input, invalid snapshot, not found */
#define PRED_EXIT_USAGE      2


/* main.c */
extern char  pred_last_error[512];

void pred_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
int pred_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
int pred_parse_duration(const char *s, uint64_t *out);
int pred_parse_size(const char *s, size_t *out);
int pred_parse_time(const char *s, time_t *out);
int pred_parse_ms(const char *s, uint64_t *out);
int pred_snap_file(char *buf, size_t size, const char *dir,
    const char *version);
int pred_delta_file(char *buf, size_t size, const char *dir,
    const char *version);
int pred_no_base(const char *dir, const char *version, const char *what);
int pred_open_verified(const char *path, pred_snap_t *s, int full);
int pred_fsync_path(const char *path, int dir);

/* build.c */
int pred_cmd_build(int argc, char **argv);

/* publish.c */
int pred_cmd_publish(int argc, char **argv);
int pred_cmd_rollback(int argc, char **argv);
int pred_cmd_canary(int argc, char **argv);
int pred_cmd_promote(int argc, char **argv);
int pred_cmd_abort(int argc, char **argv);
int pred_cmd_list(int argc, char **argv);
int pred_candidate_info(const char *dir);
int pred_candidate_read(const char *dir, char *file, uint32_t *share);
int pred_cmd_gc(int argc, char **argv);
int pred_live_entries(const char *dir, uint64_t *entries);
int pred_link_read(const char *dir, const char *name, char *target,
    size_t size);
int pred_link_set(const char *dir, const char *name, const char *target);
void pred_link_restore(const char *dir, const char *name, const char *old);
int pred_link_remove(const char *dir, const char *name);
int pred_dir_lock(const char *dir);
void pred_dir_unlock(void);
int pred_switch(const char *dir, const char *target, const char *verb,
    int full);
void pred_format_age(char *buf, size_t size, time_t created);
void pred_format_size(char *buf, size_t size, off_t bytes);

/* delta.c */
int pred_delta_publish(const char *dir, const char *version);
int pred_delta_switch(const char *dir, const char *target,
    const char *old);
void pred_delta_list(const char *dir, const char *cur);
int pred_delta_gc(const char *dir, const char *cur, const char *prev);
int pred_delta_get(const char *dir, const char *key);
void pred_delta_info(const char *dir);
int pred_cmd_compact(int argc, char **argv);

/* manifest.c */
int pred_manifest_write(const char *dir, time_t activate_at);
void pred_format_time(char *buf, size_t size, time_t t);
int pred_json_file_write(const char *dir, const char *name, json_t *j,
    int newer);

/* pull.c */
int pred_cmd_pull(int argc, char **argv);

/* fleet.c */
int pred_cmd_fleet_status(int argc, char **argv);

#endif /* PRED_LOADER_H */
