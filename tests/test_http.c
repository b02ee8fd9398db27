// SPDX-License-Identifier: MIT
/*
 * test_http.c — unit test of lib/http.c against a tiny HTTP/1.1 server
 * running in this process (plain sockets, keep-alive, one thread per
 * connection, counts the connections it accepts).
 *
 * Prints TAP lines ("ok N - …" / "not ok N - …"); exits 1 if any check fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf, strndupa, memrchr, … */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../lib/http.h"

#define TOKEN "s3cr3t-token-value"

static int nchecks, nfailed;

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	nchecks++;
	if (!ok)
		nfailed++;
	printf("%s %d - ", ok ? "ok" : "not ok", nchecks);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* ------------------------------------------------------------ the server */

struct server {
	int fd;
	atomic_int accepted;
	pthread_t thread;
};

/* The last request any connection received; protected by last_lock. */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char method[16];
	char path[256];
	char *head;	/* request line and headers */
	char *body;
} last;

static void record(const char *method, const char *path, const char *head,
		   const char *body)
{
	pthread_mutex_lock(&last_lock);
	snprintf(last.method, sizeof(last.method), "%s", method);
	snprintf(last.path, sizeof(last.path), "%s", path);
	free(last.head);
	free(last.body);
	last.head = strdup(head);
	last.body = strdup(body);
	pthread_mutex_unlock(&last_lock);
}

static bool write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool respond(int fd, int status, const char *body)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n", status, strlen(body));
	return write_all(fd, head, (size_t)n) &&
	       write_all(fd, body, strlen(body));
}

static bool route(int fd, const char *method, const char *path)
{
	if (!strcmp(path, "/json"))
		return respond(fd, 200, "{\"hello\":\"world\",\"n\":42}");
	if (!strcmp(path, "/echo"))
		return respond(fd, 200, "{\"ok\":true}");
	if (!strcmp(path, "/item/7"))
		return respond(fd, strcmp(method, "DELETE") ? 405 : 200,
			       "{\"deleted\":7}");
	if (!strcmp(path, "/401"))
		return respond(fd, 401, "{\"errors\":[{\"error\":\"no\"}]}");
	if (!strcmp(path, "/bad"))
		return respond(fd, 200, "{\"unterminated\": ");
	if (!strcmp(path, "/empty"))
		return respond(fd, 200, "");
	return respond(fd, 404, "{}");
}

/* Reads one request into buf (head + body); returns false at EOF/error. */
static bool read_request(int fd, char **buf, size_t *head_len, size_t *total)
{
	size_t cap = 1 << 16, len = 0, clen = 0;
	char *p = malloc(cap), *end, *cl, *q;
	ssize_t r;

	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			q = realloc(p, cap);
			if (!q)
				goto out_free;
			p = q;
		}
		p[len] = '\0';
		end = strstr(p, "\r\n\r\n");
		if (end) {
			cl = strcasestr(p, "\r\nContent-Length:");
			clen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
			if (len >= (size_t)(end + 4 - p) + clen)
				break;
		}
		r = read(fd, p + len, cap - len - 1);
		if (r <= 0)
			goto out_free;
		len += (size_t)r;
	}
	*head_len = (size_t)(end + 4 - p);
	*total = *head_len + clen;
	p[*total] = '\0';
	*buf = p;
	return true;
out_free:
	free(p);
	return false;
}

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char method[16], path[256], *req;
	size_t head_len, total;

	while (read_request(fd, &req, &head_len, &total)) {
		if (sscanf(req, "%15s %255s", method, path) != 2) {
			free(req);
			break;
		}
		record(method, path, strndupa(req, head_len), req + head_len);
		free(req);
		if (!route(fd, method, path))
			break;
	}
	close(fd);
	return NULL;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	pthread_t t;
	int fd;

	while ((fd = accept(s->fd, NULL, NULL)) >= 0) {
		atomic_fetch_add(&s->accepted, 1);
		if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd))
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

/* A loopback TCP listener on a free port; returns the port. */
static int listen_tcp(int *fdp)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 16) || getsockname(fd, (struct sockaddr *)&a, &alen)) {
		perror("listen_tcp");
		exit(2);
	}
	*fdp = fd;
	return ntohs(a.sin_port);
}

static void listen_unix(int *fdp, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 16)) {
		perror("listen_unix");
		exit(2);
	}
	*fdp = fd;
}

static void server_start(struct server *s)
{
	if (pthread_create(&s->thread, NULL, serve, s)) {
		perror("pthread_create");
		exit(2);
	}
}

/* ------------------------------------------------------------ checks */

static bool last_has(const char *what, const char *needle)
{
	bool found;

	pthread_mutex_lock(&last_lock);
	found = !strcmp(what, "head") ? last.head && strstr(last.head, needle)
				      : last.body && !strcmp(last.body, needle);
	pthread_mutex_unlock(&last_lock);
	return found;
}

static bool last_method_is(const char *m)
{
	bool same;

	pthread_mutex_lock(&last_lock);
	same = !strcmp(last.method, m);
	pthread_mutex_unlock(&last_lock);
	return same;
}

static void test_get_json(struct http *h)
{
	struct http_result res;
	char err[256] = "";
	int rc = http_get(h, "/json", &res, err, sizeof(err));
	cJSON *n = cJSON_GetObjectItemCaseSensitive(res.json, "n");

	check(rc == 0 && res.status == 200, "GET /json returns 0 and 200 (rc %d, %s)",
	      rc, err);
	check(cJSON_IsNumber(n) && n->valuedouble == 42, "GET /json body parsed");
	check(res.body && strstr(res.body, "world") && res.len == strlen(res.body),
	      "raw body kept");
	http_result_free(&res);
}

static void test_headers(struct http *h)
{
	struct http_result res;
	char err[256];

	http_get(h, "/json", &res, err, sizeof(err));
	http_result_free(&res);
	check(last_has("head", "X-SLURM-USER-NAME: root\r\n") &&
	      last_has("head", "X-SLURM-USER-TOKEN: " TOKEN "\r\n"),
	      "extra headers sent");
	check(last_has("head", "Accept: application/json"), "Accept header sent");
	http_set_header(h, "x-slurm-user-name", "alice");
	http_get(h, "/json", &res, err, sizeof(err));
	http_result_free(&res);
	check(last_has("head", "x-slurm-user-name: alice\r\n") &&
	      !last_has("head", "X-SLURM-USER-NAME: root"),
	      "a header set again replaces the old value");
	http_set_header(h, "X-SLURM-USER-NAME", "root");
	check(http_set_header(h, "Bad:Name", "x") == -EINVAL &&
	      http_set_header(h, "X-A", "v\r\nInjected: 1") == -EINVAL,
	      "header names with ':' and values with line breaks refused");
}

static void test_post(struct http *h)
{
	struct http_result res;
	char err[256] = "", *big;
	int rc;

	rc = http_post_json(h, "/echo", "{\"a\":[1,2,3]}", &res, err,
			    sizeof(err));
	check(rc == 0 && res.status == 200, "POST returns 0 and 200 (rc %d, %s)",
	      rc, err);
	check(last_method_is("POST") && last_has("body", "{\"a\":[1,2,3]}"),
	      "POST body arrives intact");
	check(last_has("head", "Content-Type: application/json"),
	      "POST sends Content-Type: application/json");
	http_result_free(&res);

	big = malloc(200001);
	memset(big, 'x', 200000);
	big[0] = '"';
	big[199999] = '"';
	big[200000] = '\0';
	rc = http_post_json(h, "/echo", big, &res, err, sizeof(err));
	check(rc == 0 && last_has("body", big) && !last_has("head", "Expect:"),
	      "200 kB POST body arrives without Expect: 100-continue");
	http_result_free(&res);
	free(big);
}

static void test_delete(struct http *h)
{
	struct http_result res;
	char err[256] = "";
	int rc = http_delete(h, "/item/7", &res, err, sizeof(err));

	check(rc == 0 && res.status == 200 && last_method_is("DELETE"),
	      "DELETE sent as DELETE and answered 200 (rc %d, %s)", rc, err);
	http_result_free(&res);
	rc = http_get(h, "/item/7", &res, err, sizeof(err));
	check(last_method_is("GET") && rc == -EREMOTEIO && res.status == 405,
	      "a GET after a DELETE is a GET again");
	http_result_free(&res);
}

static void test_status_401(struct http *h, int port)
{
	struct http_result res;
	char err[256] = "", want[128];
	int rc = http_get(h, "/401", &res, err, sizeof(err));

	snprintf(want, sizeof(want), "HTTP 401 from GET http://127.0.0.1:%d/401",
		 port);
	check(rc == -EREMOTEIO && res.status == 401, "401 surfaced as -EREMOTEIO");
	check(res.json && cJSON_GetObjectItem(res.json, "errors"),
	      "error body still parsed");
	check(!strcmp(err, want), "sentence: \"%s\"", err);
	check(!strstr(err, TOKEN), "no token in the sentence");
	http_result_free(&res);
}

static void test_bad_json(struct http *h)
{
	struct http_result res;
	char err[256] = "";
	int rc = http_get(h, "/bad", &res, err, sizeof(err));

	check(rc == -EBADMSG && !res.json && res.body &&
	      strstr(res.body, "unterminated"),
	      "invalid JSON is -EBADMSG with the raw body kept");
	check(strstr(err, "invalid JSON in the answer to GET http://127.0.0.1:") != NULL,
	      "sentence: \"%s\"", err);
	http_result_free(&res);
	rc = http_get(h, "/empty", &res, err, sizeof(err));
	check(rc == 0 && !res.json && res.body && res.len == 0,
	      "an empty 200 answer is 0 with json NULL");
	http_result_free(&res);
}

static void test_refused(void)
{
	struct http_result res;
	char base[64], err[256] = "", want[128];
	int fd, port = listen_tcp(&fd);
	struct http *h;
	int rc;

	close(fd);	/* now nothing listens on port */
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	h = http_new(base, 2000, 2000, err, sizeof(err));
	rc = http_get(h, "/x", &res, err, sizeof(err));
	snprintf(want, sizeof(want), "connection refused at %s", base);
	check(rc == -ECONNREFUSED && res.status == 0 && !res.body,
	      "nothing listening is -ECONNREFUSED");
	check(!strcmp(err, want), "sentence: \"%s\"", err);
	http_result_free(&res);
	http_free(h);

	h = http_new("unix:/nonexistent/mlfs.sock", 2000, 2000, err, sizeof(err));
	rc = http_get(h, "/x", &res, err, sizeof(err));
	check(rc == -ECONNREFUSED &&
	      !strcmp(err, "connection refused at unix:/nonexistent/mlfs.sock (no such socket)"),
	      "missing unix socket: \"%s\"", err);
	http_free(h);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_timeout(void)
{
	struct http_result res;
	char base[64], err[256] = "", want[128];
	int fd, port = listen_tcp(&fd);	/* listens, never accepts */
	struct http *h;
	double t0, dt;
	int rc;

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	h = http_new(base, 1000, 1000, err, sizeof(err));
	t0 = now();
	rc = http_get(h, "/x", &res, err, sizeof(err));
	dt = now() - t0;
	snprintf(want, sizeof(want), "timed out after 1 s at %s", base);
	check(rc == -ETIMEDOUT && dt > 0.9 && dt < 60,	/* ends, not before */
	      "silent server is -ETIMEDOUT after ~1 s (%.2f s)", dt);
	check(!strcmp(err, want), "sentence: \"%s\"", err);
	http_result_free(&res);
	http_free(h);
	close(fd);
}

static void test_dns(void)
{
	struct http_result res;
	char err[256] = "";
	struct http *h;
	int rc;

	h = http_new("http://mlfs-test.invalid:80", 3000, 3000, err, sizeof(err));
	rc = http_get(h, "/x", &res, err, sizeof(err));
	check(rc == -EHOSTUNREACH &&
	      !strcmp(err, "cannot resolve the host name in http://mlfs-test.invalid:80"),
	      "unknown host is -EHOSTUNREACH: \"%s\"", err);
	http_free(h);
}

static void test_bad_base(void)
{
	char err[256] = "";
	struct http *h = http_new("ftp://x", 1000, 1000, err, sizeof(err));

	check(!h && strstr(err, "unsupported address ftp://x"),
	      "unsupported scheme refused: \"%s\"", err);
	h = http_new("unix:relative.sock", 1000, 1000, err, sizeof(err));
	check(!h && strstr(err, "absolute path"), "relative unix path refused");
}

static void test_keepalive(struct server *s, const char *base)
{
	struct http_result res;
	char err[256] = "";
	struct http *h = http_new(base, 2000, 5000, err, sizeof(err));
	int before = atomic_load(&s->accepted), i, ok = 0;

	for (i = 0; i < 20; i++) {
		if (i % 3 == 1)
			ok += !http_post_json(h, "/echo", "{}", &res, err,
					      sizeof(err));
		else
			ok += !http_get(h, "/json", &res, err, sizeof(err));
		http_result_free(&res);
	}
	check(ok == 20, "20 sequential requests succeed");
	check(atomic_load(&s->accepted) - before == 1,
	      "20 requests used %d TCP connection(s), want 1",
	      atomic_load(&s->accepted) - before);
	http_free(h);
}

static void test_unix(void)
{
	struct server s = { 0 };
	struct http_result res;
	char path[64], base[80], err[256] = "";
	struct http *h;
	int rc;

	snprintf(path, sizeof(path), "/tmp/test_http.%d.sock", getpid());
	listen_unix(&s.fd, path);
	server_start(&s);
	snprintf(base, sizeof(base), "unix:%s", path);
	h = http_new(base, 2000, 2000, err, sizeof(err));
	rc = http_get(h, "/json", &res, err, sizeof(err));
	check(rc == 0 && res.json && last_has("head", "Host: localhost"),
	      "GET over a unix socket (rc %d, %s)", rc, err);
	http_result_free(&res);
	http_free(h);
	shutdown(s.fd, SHUT_RDWR);
	pthread_join(s.thread, NULL);
	close(s.fd);
	unlink(path);
}

int main(void)
{
	struct server s = { 0 };
	char base[64], err[256] = "";
	struct http *h;
	int port;

	port = listen_tcp(&s.fd);
	server_start(&s);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/", port);
	h = http_new(base, 2000, 5000, err, sizeof(err));
	check(h != NULL, "http_new(%s) (%s)", base, err);
	if (!h)
		return 1;
	http_set_header(h, "X-SLURM-USER-NAME", "root");
	http_set_header(h, "X-SLURM-USER-TOKEN", TOKEN);

	test_get_json(h);
	test_headers(h);
	test_post(h);
	test_delete(h);
	test_status_401(h, port);
	test_bad_json(h);
	http_free(h);
	base[strlen(base) - 1] = '\0';
	test_keepalive(&s, base);
	test_refused();
	test_timeout();
	test_dns();
	test_bad_base();
	test_unix();

	shutdown(s.fd, SHUT_RDWR);
	pthread_join(s.thread, NULL);
	close(s.fd);
	printf("1..%d\n", nchecks);
	if (nfailed)
		printf("# %d of %d checks failed\n", nfailed, nchecks);
	return nfailed ? 1 : 0;
}
