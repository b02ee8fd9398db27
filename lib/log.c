// SPDX-License-Identifier: MIT
/*
 * The daemon's log (log.h).  Any thread: one write(2) a line, a mutex
 * guards the file; the SIGHUP handler (log_hup) reopens it in place.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Protects log_path and log_fd; messages are written with one write(2). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_path;
static int log_fd = 2;
static int log_debug_on;
/*
 * SIGHUP: reopen the log file at once (after logrotate moved it), with
 * async-signal-safe calls only: the new file takes the old descriptor's
 * number through dup2, so writers never see a closed descriptor.
 */
void log_hup(int sig)
{
	int saved = errno, fd;

	(void)sig;
	if (log_path && log_fd > 2) {
		fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			  0600);
		if (fd >= 0) {
			dup3(fd, log_fd, O_CLOEXEC);
			close(fd);
		}
	}
	errno = saved;
}

void log_init(const char *path, int debug)
{
	log_debug_on = debug;
	if (!path)
		return;
	free(log_path);
	log_path = strdup(path);
	log_reopen();
}

void log_reopen(void)
{
	int fd;

	pthread_mutex_lock(&log_lock);
	if (log_path) {
		fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (log_fd > 2)
				close(log_fd);
			log_fd = fd;
		}
	}
	pthread_mutex_unlock(&log_lock);
}

static const char *level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_ERR_:	return "ERROR";
	case LOG_WARN_:	return "warning";
	case LOG_INFO_:	return "info";
	default:	return "debug";
	}
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char buf[2048];
	struct tm tm;
	time_t now;
	va_list ap;
	int n, m;

	if (lvl == LOG_DEBUG_ && !log_debug_on)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	n += snprintf(buf + n, sizeof(buf) - n, "mlfs[%d] %s: ", getpid(),
		      level_name(lvl));
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	n = (m < 0 || n + m >= (int)sizeof(buf) - 1) ? (int)sizeof(buf) - 2 : n + m;
	buf[n++] = '\n';
	pthread_mutex_lock(&log_lock);
	if (write(log_fd, buf, n) < 0) {
		/* nowhere left to report it */
	}
	pthread_mutex_unlock(&log_lock);
}
