/* SPDX-License-Identifier: MIT */
/*
 * http.h — a small HTTP/JSON client for the REST drivers (libcurl + cJSON).
 *
 * One struct http per target.  It keeps one CURL easy handle, so the TCP
 * (or unix socket) connection stays open between calls (HTTP keep-alive).
 * A handle is meant to be used by one thread at a time (the target's
 * worker); a mutex inside serialises calls anyway, so sharing it is safe,
 * only slower.  Every call is bounded by the handle's timeouts.
 *
 * Errors are negative errno values plus ONE human sentence in the caller's
 * buffer.  Header values (tokens) never appear in any sentence and are never
 * logged; do not put secrets in paths either, as paths do appear.
 */
#ifndef MLFS_HTTP_H
#define MLFS_HTTP_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct http;

/* What came back from one call.  Free with http_result_free(). */
struct http_result {
	long status;	/* HTTP status, 0 when the server did not answer */
	cJSON *json;	/* parsed body, NULL when empty or not JSON */
	char *body;	/* raw body, NUL-terminated; NULL when no answer */
	size_t len;	/* bytes in body, without the NUL */
};

/*
 * http_new() - open a handle for one REST target.
 * @base:       "http://host:port" (an optional path prefix is kept), or
 *              "unix:/path/to/socket" (requests then go to http://localhost
 *              over that socket).  https:// works too.
 * @connect_ms: limit for establishing the connection, > 0.
 * @total_ms:   limit for a whole call (connect, send, answer), > 0.
 *
 * Returns the handle, or NULL with a sentence in @err (bad arguments or no
 * memory).  No connection is made here: the first call connects.
 */
struct http *http_new(const char *base, long connect_ms, long total_ms,
		      char *err, size_t errlen);

/* http_free() - close the connection, wipe stored header values, free. */
void http_free(struct http *h);

/*
 * http_set_header() - send "@name: @value" with every later call; a header
 * of the same name (case-insensitive) is replaced.  @value NULL removes it.
 * Returns 0, -EINVAL (name empty or containing ':' or a line break, value
 * containing a line break) or -ENOMEM.
 */
int http_set_header(struct http *h, const char *name, const char *value);

/*
 * http_get(), http_post_json(), http_delete() - one request to base + @path
 * (@path starts with '/').  http_post_json() sends @json as the body with
 * Content-Type: application/json.
 *
 * On return @res is always initialised (free it with http_result_free()).
 * Returns:
 *   0             a 2xx answer; res->json is the parsed body (NULL if empty)
 *   -EREMOTEIO    the server answered with status >= 300: res->status, body
 *                 and json (when the body is JSON) are filled, so the driver
 *                 can phrase "401 from slurmrestd: check the token" or read
 *                 the errors[] of an error body
 *   -EBADMSG      a 2xx answer whose non-empty body is not JSON (body kept)
 *   -ECONNREFUSED nothing listens at the address (or no such unix socket)
 *   -ETIMEDOUT    the connect or total limit ran out
 *   -EHOSTUNREACH the host name could not be resolved
 *   -EIO          any other transport failure (reset, empty reply, TLS, …)
 *   -EFBIG        the answer exceeded HTTP_MAX_BODY bytes
 *   -EINVAL       bad arguments;  -ENOMEM  out of memory
 * and, on any failure, one sentence in @err naming the address, e.g.
 * "connection refused at http://127.0.0.1:6821".
 */
int http_get(struct http *h, const char *path, struct http_result *res,
	     char *err, size_t errlen);
int http_post_json(struct http *h, const char *path, const char *json,
		   struct http_result *res, char *err, size_t errlen);
int http_delete(struct http *h, const char *path, struct http_result *res,
		char *err, size_t errlen);

/* http_result_free() - free what a call put in @res and zero it. */
void http_result_free(struct http_result *res);

/* Upper bound on an answer's size: a runaway server cannot eat our memory. */
#define HTTP_MAX_BODY ((size_t)256 << 20)

#endif /* MLFS_HTTP_H */
