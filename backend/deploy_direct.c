// SPDX-License-Identifier: MIT
/*
 * The replicas' direct ports, between two workers: a deployment's worker
 * publishes the direct ports of its ready replicas (deploy_direct_publish),
 * the endpoints' worker points its proxy's server slots at them and says
 * which ports the proxy still sends to (deploy_direct_used).  A replica
 * leaving (a rolling update, a scale-in, a delete) is held before its
 * drain while the proxy still sends to it (deploy_direct_in_use): its
 * drain closes the direct port, and a request the proxy sent there then
 * failed (503 once both old replicas of a rolling update were gone before
 * the endpoint's next look).  A change of the published ports wakes the
 * endpoints' worker at once.  Any thread; one lock, held briefly.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_i.h"
#include "ws_i.h"

struct direct {
	int64_t id;			/* the deployment */
	char host[DEP_DIRECT_HOST_MAX];	/* where they are reached */
	int n;				/* its ready replicas' direct ports */
	int port[DEP_REPS_MAX];
	int64_t ep;			/* the endpoint whose proxy uses them,
					 * 0: none */
	int nused;			/* the ports that proxy sends to */
	int used[DEP_REPS_MAX];
	struct direct *next;
};

static pthread_mutex_t direct_lock = PTHREAD_MUTEX_INITIALIZER;
static struct direct *directs;

/* Under direct_lock: @id's entry, made when @make. */
static struct direct *entry(int64_t id, int make)
{
	struct direct *x;

	for (x = directs; x; x = x->next)
		if (x->id == id)
			return x;
	if (make && (x = calloc(1, sizeof(*x)))) {
		x->id = id;
		x->next = directs;
		directs = x;
	}
	return x;
}

/* Under direct_lock: an entry that holds nothing any more goes. */
static void tidy(void)
{
	struct direct **pp = &directs, *x;

	while ((x = *pp)) {
		if (x->n || x->nused) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		free(x);
	}
}

static int cmp_port(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void deploy_direct_publish(struct ws *ws, int64_t id, const char *host,
			   const int *port, int n)
{
	int sorted[DEP_REPS_MAX], changed = 0;
	int64_t ep = 0;
	struct direct *x;

	if (n > DEP_REPS_MAX)
		n = DEP_REPS_MAX;
	if (n)
		memcpy(sorted, port, (size_t)n * sizeof(*port));
	qsort(sorted, (size_t)n, sizeof(*sorted), cmp_port);
	pthread_mutex_lock(&direct_lock);
	x = entry(id, n > 0);
	if (!host)
		host = "";
	if (x && (x->n != n || strcmp(x->host, host) ||
		  memcmp(x->port, sorted, (size_t)n * sizeof(*sorted)))) {
		memcpy(x->port, sorted, (size_t)n * sizeof(*sorted));
		x->n = n;
		snprintf(x->host, sizeof(x->host), "%s", host);
		changed = 1;
		ep = x->ep;
	}
	tidy();
	pthread_mutex_unlock(&direct_lock);
	/* the proxy that sends to them follows now, not at its next tick */
	if (changed && ep)
		worker_kick(ws, ep);
}

int deploy_direct_ports(int64_t id, char *host, size_t hsz, int *port,
			int max)
{
	struct direct *x;
	int n = 0;

	pthread_mutex_lock(&direct_lock);
	x = entry(id, 0);
	if (x && x->host[0]) {
		n = x->n < max ? x->n : max;
		memcpy(port, x->port, (size_t)n * sizeof(*port));
		snprintf(host, hsz, "%s", x->host);
	}
	pthread_mutex_unlock(&direct_lock);
	return n;
}

/* Is @port in @x's used ports? */
static int uses(const struct direct *x, int port)
{
	for (int i = 0; i < x->nused; i++)
		if (x->used[i] == port)
			return 1;
	return 0;
}

void deploy_direct_used(struct ws *ws, int64_t id, int64_t ep,
			const int *port, int n)
{
	struct direct *x, now = { .nused = n };
	int released = 0;

	if (n > DEP_REPS_MAX)
		n = DEP_REPS_MAX;
	pthread_mutex_lock(&direct_lock);
	if (n)
		memcpy(now.used, port, (size_t)n * sizeof(*port));
	x = entry(id, n > 0);
	if (x && (!n || !x->ep || x->ep == ep)) {
		for (int i = 0; i < x->nused && !released; i++)
			released = !uses(&now, x->used[i]);
		x->ep = n ? ep : 0;
		x->nused = n;
		memcpy(x->used, now.used, sizeof(x->used));
	}
	tidy();
	pthread_mutex_unlock(&direct_lock);
	/* a replica held before its drain may go now */
	if (released)
		worker_kick(ws, id);
}

int deploy_direct_in_use(int64_t id, int port)
{
	struct direct *x;
	int used = 0;

	if (port <= 0)
		return 0;
	pthread_mutex_lock(&direct_lock);
	x = entry(id, 0);
	used = x && uses(x, port);
	pthread_mutex_unlock(&direct_lock);
	return used;
}
