// SPDX-License-Identifier: MIT
/*
 * http.c — HTTP/JSON client on libcurl + cJSON.  See http.h for the contract.
 *
 * Keep-alive comes from reusing one CURL easy handle: libcurl keeps the
 * connection in that handle's cache and picks it up again on the next call
 * to the same host.  Options that differ between methods are all set on
 * every call, so nothing leaks from one request into the next.
 *
 * Threads: the Slurm driver's calls, on the backend worker thread; a mutex
 * in each handle serialises any other caller.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf, strndupa, memrchr, … */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http.h"
#include "vec.h"

#define HTTP_MAX_HEADERS 16

struct http {
	pthread_mutex_t lock;	/* serialises calls; protects all below */
	CURL *curl;
	char *base;		/* URL prefix without trailing '/' */
	char *shown;		/* address as the user wrote it, for sentences */
	long connect_ms;
	long total_ms;
	char *headers[HTTP_MAX_HEADERS];	/* "Name: value" */
	size_t nheaders;
	struct curl_slist *hdrs;	/* headers + Accept, for GET/DELETE */
	struct curl_slist *hdrs_json;	/* hdrs + Content-Type, for POST */
	char curl_err[CURL_ERROR_SIZE];
	/* the answer being received */
	char *buf;
	size_t len, cap;
	bool too_big;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes one sentence into err (if given) and returns rc. */
static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ------------------------------------------------------------ headers */

static struct curl_slist *slist_add(struct curl_slist *l, const char *s,
				    bool *ok)
{
	struct curl_slist *n;

	if (!*ok)
		return l;
	n = curl_slist_append(l, s);
	if (!n) {
		*ok = false;
		return l;
	}
	return n;
}

/*
 * Rebuilds both header lists from h->headers.  "Expect:" turns off the
 * 100-continue round trip curl would add to larger POST bodies.
 * Returns 0 or -ENOMEM (the old lists are then kept).
 */
static int rebuild_headers(struct http *h)
{
	struct curl_slist *plain = NULL, *json = NULL;
	bool ok = true;
	size_t i;

	plain = slist_add(plain, "Accept: application/json", &ok);
	json = slist_add(json, "Accept: application/json", &ok);
	json = slist_add(json, "Content-Type: application/json", &ok);
	json = slist_add(json, "Expect:", &ok);
	for (i = 0; i < h->nheaders; i++) {
		plain = slist_add(plain, h->headers[i], &ok);
		json = slist_add(json, h->headers[i], &ok);
	}
	if (!ok) {
		curl_slist_free_all(plain);
		curl_slist_free_all(json);
		return -ENOMEM;
	}
	curl_slist_free_all(h->hdrs);
	curl_slist_free_all(h->hdrs_json);
	h->hdrs = plain;
	h->hdrs_json = json;
	return 0;
}

static bool header_name_ok(const char *name)
{
	return name && *name && !strpbrk(name, ":\r\n");
}

/* Index of the header called name, or h->nheaders when absent. */
static size_t header_find(const struct http *h, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < h->nheaders; i++)
		if (!strncasecmp(h->headers[i], name, n) &&
		    h->headers[i][n] == ':')
			return i;
	return h->nheaders;
}

static void header_remove(struct http *h, size_t i)
{
	wipe_free(h->headers[i]);
	h->headers[i] = h->headers[--h->nheaders];
}

int http_set_header(struct http *h, const char *name, const char *value)
{
	char *line = NULL;
	size_t i;
	int rc;

	if (!h || !header_name_ok(name) || (value && strpbrk(value, "\r\n")))
		return -EINVAL;
	if (value && asprintf(&line, "%s: %s", name, value) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	i = header_find(h, name);
	if (i < h->nheaders)
		header_remove(h, i);
	rc = 0;
	if (line && h->nheaders == HTTP_MAX_HEADERS)
		rc = -ENOSPC;
	else if (line)
		h->headers[h->nheaders++] = line, line = NULL;
	if (!rc)
		rc = rebuild_headers(h);
	pthread_mutex_unlock(&h->lock);
	wipe_free(line);
	return rc;
}

/* ------------------------------------------------------------ handle */

/*
 * Splits base into the URL prefix and, for "unix:/path", the socket path.
 * Returns 0 or -EINVAL / -ENOMEM with a sentence.
 */
static int parse_base(struct http *h, const char *base, char **sock,
		      char *err, size_t errlen)
{
	size_t n;

	*sock = NULL;
	if (!strncmp(base, "unix:", 5)) {
		if (base[5] != '/')
			return say(err, errlen, -EINVAL,
				   "unix socket address %s must name an absolute path",
				   base);
		*sock = strdup(base + 5);
		h->base = strdup("http://localhost");
	} else if (!strncmp(base, "http://", 7) ||
		   !strncmp(base, "https://", 8)) {
		h->base = strdup(base);
	} else {
		return say(err, errlen, -EINVAL,
			   "unsupported address %s: use http://host:port or unix:/path",
			   base);
	}
	if (!h->base || (base[0] == 'u' && !*sock))
		return say(err, errlen, -ENOMEM, "out of memory");
	n = strlen(h->base);
	while (n > 8 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	h->shown = strdup(*sock ? base : h->base);
	if (!h->shown)
		return say(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg);

/* Options that stay the same for every call on this handle. */
static int set_fixed_options(struct http *h, const char *sock)
{
	CURL *c = h->curl;
	CURLcode rc = CURLE_OK;

	rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
	rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->total_ms);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
	rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	if (sock)
		rc |= curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	return rc == CURLE_OK ? 0 : -EINVAL;
}

struct http *http_new(const char *base, long connect_ms, long total_ms,
		      char *err, size_t errlen)
{
	struct http *h;
	char *sock = NULL;

	if (!base || connect_ms <= 0 || total_ms <= 0) {
		say(err, errlen, -EINVAL,
		    "an HTTP target needs an address and positive timeouts");
		return NULL;
	}
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		say(err, errlen, -EIO, "libcurl failed to initialise: %s",
		    curl_easy_strerror(global_rc));
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		say(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	h->connect_ms = connect_ms;
	h->total_ms = total_ms;
	if (parse_base(h, base, &sock, err, errlen))
		goto out_free_handle;
	h->curl = curl_easy_init();
	if (!h->curl || rebuild_headers(h) || set_fixed_options(h, sock)) {
		say(err, errlen, -ENOMEM, "cannot set up libcurl for %s", base);
		goto out_free_handle;
	}
	free(sock);	/* libcurl copied it */
	return h;

out_free_handle:
	free(sock);
	http_free(h);
	return NULL;
}

void http_free(struct http *h)
{
	size_t i;

	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->hdrs);
	curl_slist_free_all(h->hdrs_json);
	for (i = 0; i < h->nheaders; i++)
		wipe_free(h->headers[i]);
	free(h->buf);
	free(h->base);
	free(h->shown);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void http_result_free(struct http_result *res)
{
	if (!res)
		return;
	cJSON_Delete(res->json);
	free(res->body);
	memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------ one call */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http *h = arg;
	size_t n = size * nmemb;

	if (h->len + n + 1 > HTTP_MAX_BODY) {
		h->too_big = true;
		return 0;	/* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (vec_grow(&h->buf, &h->cap, h->len + n + 1, 1))
		return 0;
	memcpy(h->buf + h->len, data, n);
	h->len += n;
	h->buf[h->len] = '\0';
	return n;
}

/* Seconds for a sentence: "10 s", "1.5 s". */
static double secs(long ms)
{
	return (double)ms / 1000.0;
}

/* Turns a failed transfer into an errno and a sentence naming the address. */
static int transport_error(struct http *h, CURLcode cc, char *err,
			   size_t errlen)
{
	long os_errno = 0;
	double connect_s = 0;

	curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
	curl_easy_getinfo(h->curl, CURLINFO_CONNECT_TIME, &connect_s);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		if (os_errno == ENOENT)
			return say(err, errlen, -ECONNREFUSED,
				   "connection refused at %s (no such socket)",
				   h->shown);
		if (os_errno == ECONNREFUSED || os_errno == 0)
			return say(err, errlen, -ECONNREFUSED,
				   "connection refused at %s", h->shown);
		return say(err, errlen, -EIO, "cannot connect to %s: %s",
			   h->shown, strerror((int)os_errno));
	case CURLE_OPERATION_TIMEDOUT:
		return say(err, errlen, -ETIMEDOUT, "timed out after %g s at %s",
			   secs(connect_s > 0 ? h->total_ms :
			   (h->connect_ms < h->total_ms ? h->connect_ms :
			    h->total_ms)), h->shown);
	case CURLE_COULDNT_RESOLVE_HOST:
		return say(err, errlen, -EHOSTUNREACH,
			   "cannot resolve the host name in %s", h->shown);
	case CURLE_WRITE_ERROR:
		if (h->too_big)
			return say(err, errlen, -EFBIG,
				   "the answer from %s is larger than %zu MiB",
				   h->shown, HTTP_MAX_BODY >> 20);
		return say(err, errlen, -ENOMEM, "out of memory");
	case CURLE_OUT_OF_MEMORY:
		return say(err, errlen, -ENOMEM, "out of memory");
	default:
		return say(err, errlen, -EIO, "request to %s failed: %s",
			   h->shown, h->curl_err[0] ? h->curl_err :
			   curl_easy_strerror(cc));
	}
}

/* Hands the received body to res and parses it. */
static int take_answer(struct http *h, const char *method, const char *path,
		       struct http_result *res, char *err, size_t errlen)
{
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &res->status);
	res->body = h->buf ? h->buf : strdup("");
	res->len = h->len;
	h->buf = NULL;
	h->len = h->cap = 0;
	if (!res->body)
		return say(err, errlen, -ENOMEM, "out of memory");
	if (res->len)
		res->json = cJSON_ParseWithLength(res->body, res->len);
	if (res->status < 200 || res->status >= 300)
		return say(err, errlen, -EREMOTEIO, "HTTP %ld from %s %s%s",
			   res->status, method, h->shown, path);
	if (res->len && !res->json)
		return say(err, errlen, -EBADMSG,
			   "invalid JSON in the answer to %s %s%s", method,
			   h->shown, path);
	return 0;
}

/* Sets what differs between GET, POST and DELETE. */
static CURLcode set_method(CURL *c, const char *method, const char *json)
{
	CURLcode rc = CURLE_OK;

	if (json) {
		rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
		rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				       (curl_off_t)strlen(json));
		rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
		return rc;
	}
	rc |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
			       strcmp(method, "GET") ? method : NULL);
	return rc;
}

static int call(struct http *h, const char *method, const char *path,
		const char *json, struct http_result *res, char *err,
		size_t errlen)
{
	char *url = NULL;
	CURLcode cc;
	int rc;

	if (asprintf(&url, "%s%s%s", h->base, path[0] == '/' ? "" : "/",
		     path) < 0)
		return say(err, errlen, -ENOMEM, "out of memory");
	h->len = 0;
	h->too_big = false;
	h->curl_err[0] = '\0';
	cc = curl_easy_setopt(h->curl, CURLOPT_URL, url);
	cc |= curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER,
			       json ? h->hdrs_json : h->hdrs);
	cc |= set_method(h->curl, method, json);
	if (cc != CURLE_OK) {
		rc = say(err, errlen, -EINVAL, "cannot prepare %s %s%s",
			 method, h->shown, path);
		goto out_free_url;
	}
	cc = curl_easy_perform(h->curl);
	if (cc != CURLE_OK)
		rc = transport_error(h, cc, err, errlen);
	else
		rc = take_answer(h, method, path, res, err, errlen);
out_free_url:
	free(url);
	return rc;
}

static int request(struct http *h, const char *method, const char *path,
		   const char *json, struct http_result *res, char *err,
		   size_t errlen)
{
	int rc;

	if (res)
		memset(res, 0, sizeof(*res));
	if (!h || !path || !res)
		return say(err, errlen, -EINVAL,
			   "HTTP %s called without a handle, path or result",
			   method);
	pthread_mutex_lock(&h->lock);
	rc = call(h, method, path, json, res, err, errlen);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int http_get(struct http *h, const char *path, struct http_result *res,
	     char *err, size_t errlen)
{
	return request(h, "GET", path, NULL, res, err, errlen);
}

int http_post_json(struct http *h, const char *path, const char *json,
		   struct http_result *res, char *err, size_t errlen)
{
	return request(h, "POST", path, json ? json : "", res, err, errlen);
}

int http_delete(struct http *h, const char *path, struct http_result *res,
		char *err, size_t errlen)
{
	return request(h, "DELETE", path, NULL, res, err, errlen);
}
