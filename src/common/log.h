/*
 * log — leveled logging to stderr. One fprintf per line (stdio locks the
 * stream, so lines from worker threads never interleave). Never pass
 * passwords or other secrets to these macros.
 */
#ifndef EPOCH_COMMON_LOG_H
#define EPOCH_COMMON_LOG_H

#include <stdlib.h> /* abort(), used by epoch_assert */

typedef enum { LOG_ERROR = 0, LOG_WARNING, LOG_INFO, LOG_DEBUG } log_level_t;

/* Set the threshold (from config; relaxed atomic, safe from any thread). */
void log_set_level(log_level_t level);
/* Parse "error|warning|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *name);
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_enabled(log_level_t level);

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_write(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

/* Cheap invariant, always on: logs and aborts. */
#define epoch_assert(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            log_error("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
