/* SPDX-License-Identifier: MIT */
/*
 * One logging API for the daemon, syslog-like levels, printf-checked.
 * In the foreground (-f) it writes to stderr; in the background to
 * <state>/mlfs.log, reopened on SIGHUP (log_reopen).
 */
#ifndef MLFS_LOG_H
#define MLFS_LOG_H

enum log_level { LOG_ERR_ = 3, LOG_WARN_ = 4, LOG_INFO_ = 6, LOG_DEBUG_ = 7 };

void log_init(const char *path, int debug);	/* path NULL: stderr */
void log_reopen(void);
/* A SIGHUP handler: the log is reopened before the next message. */
void log_hup(int sig);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERR_, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN_, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO_, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG_, __VA_ARGS__)

/* Log and return @rc: `return log_error(-EIO, "...")`. */
#define log_error(rc, ...)	(log_err(__VA_ARGS__), (rc))

#endif
