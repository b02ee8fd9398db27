// SPDX-License-Identifier: MIT
/*
 * What the drivers' replicas share (see replica.h).
 */
#include "replica.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void replica_exit_reason(const char *err_line, int code, struct err *e)
{
	if (err_line && *err_line)
		err_set(e, -EIO, "failed to start: %.*s",
			(int)strcspn(err_line, "\n"), err_line);
	else if (code > 128)
		err_set(e, -EIO, "was killed by signal %d (%s)", code - 128,
			strsignal(code - 128));
	else if (code >= 0)
		err_set(e, -EIO, "exited with code %d", code);
	else
		err_set(e, -EIO, "is gone (exit code unknown)");
}

/* The number of line "@name N" of @text (N at most 7 digits), or -1. */
static int stats_field(const char *text, const char *name)
{
	size_t len = strlen(name);
	const char *p;
	long n = 0;
	int digits = 0;

	for (p = text; p && *p; p = (p = strchr(p, '\n')) ? p + 1 : NULL) {
		if (strncmp(p, name, len) || p[len] != ' ')
			continue;
		for (p += len + 1; *p >= '0' && *p <= '9' && digits < 7; p++) {
			n = n * 10 + (*p - '0');
			digits++;
		}
		return digits && (*p == '\n' || *p == '\0') ? (int)n : -1;
	}
	return -1;
}

int replica_stats_in_flight(const char *text)
{
	return stats_field(text, "in_flight");
}

int replica_stats_direct_port(const char *text)
{
	int port = stats_field(text, "direct_port");

	return port > 0 && port < 65536 ? port : 0;
}

int replica_addr(const char *host, int port, struct sockaddr_storage *sa,
		 socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	char ps[16];

	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host, ps, &hints, &ai))
		return -EINVAL;
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Wait up to @ms for @fd to be ready for @events. */
static int wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, ms) == 1 ? 0 : -ETIMEDOUT;
}

/* A connected socket to @sa within @ms, or -errno. */
static int connect_ms(const struct sockaddr *sa, socklen_t len, int ms)
{
	int fd, rc, soerr = 0;
	socklen_t sl = sizeof(soerr);

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, sa, len) && errno != EINPROGRESS ? -errno :
	     wait_fd(fd, POLLOUT, ms);
	if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
		rc = -errno;
	else if (!rc && soerr)
		rc = -soerr;
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Connect to the first address of @host that answers (a name may give
 * ::1 before 127.0.0.1, and the server listen on one of them only). */
static int connect_host(const char *host, int port, int ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai, *a;
	char ps[16];
	int fd = -EINVAL;

	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host, ps, &hints, &ai))
		return -EHOSTUNREACH;
	for (a = ai; a; a = a->ai_next) {
		fd = connect_ms(a->ai_addr, a->ai_addrlen, ms);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(ai);
	return fd;
}

static const char req[] = "GET / HTTP/1.1\r\nHost: mlfs\r\n"
			  "Connection: close\r\n\r\n";

int replica_probe_send(const char *host, int port, int ms)
{
	int fd = connect_host(host, port, ms);

	if (fd < 0)
		return fd;
	/* a few bytes into an empty socket buffer: never blocks */
	if (write(fd, req, sizeof(req) - 1) != sizeof(req) - 1) {
		close(fd);
		return -EIO;
	}
	return fd;
}

int replica_probe_check(int fd)
{
	char buf[16];
	ssize_t n;

	n = recv(fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	if (n < 12)
		return 0;	/* the rest of the status line is coming */
	return !strncmp(buf, "HTTP/1.", 7) && buf[9] == '2' ? 1 : -EIO;
}

int replica_probe(const char *host, int port, int ms, struct err *e)
{
	char buf[64];
	ssize_t n = -1;
	int fd, rc;

	fd = connect_host(host, port, ms);
	if (fd == -EHOSTUNREACH)
		return err_set(e, fd, "cannot resolve %s", host);
	rc = fd < 0 ? fd : 0;
	if (!rc && write(fd, req, sizeof(req) - 1) != sizeof(req) - 1)
		rc = -EIO;
	if (!rc && !(rc = wait_fd(fd, POLLIN, ms)))
		n = read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (rc)
		return err_set(e, rc, "GET / on %s:%d failed: %s", host, port,
			       strerror(-rc));
	buf[n > 0 ? n : 0] = '\0';
	if (n < 12 || strncmp(buf, "HTTP/1.", 7) || buf[9] != '2')
		return err_set(e, -EIO, "GET / on %s:%d answered '%.12s'", host,
			       port, n > 0 ? buf : "nothing");
	return 0;
}
