/* log.h — one-line diagnostics to stderr (or a sink the embedding program installs). */
#ifndef HL_BASE_LOG_H
#define HL_BASE_LOG_H

enum hl_log_level { HL_LOG_ERROR = 0, HL_LOG_WARN = 1, HL_LOG_INFO = 2, HL_LOG_DEBUG = 3 };
typedef void (*hl_log_sink)(int level, const char *line);

/* Level comes from $HELIOS_LOG (error|warn|info|debug), default warn. */
void hl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hl_log_set_sink(hl_log_sink sink); /* NULL restores stderr */

#endif
