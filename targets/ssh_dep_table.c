// SPDX-License-Identifier: MIT
/*
 * The SSH driver's replica table (struct ssh_dep, see ssh_dep_i.h): its
 * generations, its replicas, the trash of remote folders, and the local
 * records a restarted daemon adopts by (<dir>/replicas/gGEN-SLOT.ssh and
 * the deployment's tag).  Worker thread only, as ssh_deploy.c.
 */
#include "ssh_dep_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/vec.h"
#include "ssh_common.h"

struct ssh_dep *dep_of(struct target_ctx *t)
{
	struct ssh_tgt *s = ssh_tgt_of(t);

	if (s && !s->dep)
		s->dep = calloc(1, sizeof(*s->dep));
	return s ? s->dep : NULL;
}

struct ssh_rent *ent_of(struct ssh_dep *dt, const struct replica *r)
{
	const struct ssh_ref *ref = r->priv;

	for (struct ssh_rent *x = dt ? dt->reps : NULL; ref && x; x = x->next)
		if (x->id == ref->id)
			return x;
	return NULL;
}

/* ---- local records ------------------------------------------------------ */

static void rec_path(const char *dir, int gen, int slot, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s/g%d-%d%s", dir, DEP_REPLICAS, gen, slot,
		 REC_EXT);
}

/* "RDIR PID PORT LOGOFF": what adoption needs.  Rewritten whole.  An
 * orphan has none (its slot may have a new replica's). */
void rec_write(const struct ssh_rent *x)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	if (x->orphan)
		return;
	rec_path(x->dir, x->gen, x->slot, path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (f) {
		fprintf(f, "%s %ld %d %lld\n", x->rdir, x->pid, x->port,
			x->log_off);
		if (!fclose(f) && !rename(tmp, path))
			return;
	}
	log_warn("deployment %s: cannot record replica %d: %s", x->name,
		 x->slot, strerror(errno));
}

void rec_remove(const struct ssh_rent *x)
{
	char path[PATH_MAX];

	rec_path(x->dir, x->gen, x->slot, path);
	unlink(path);
}

/* The deployment's random tag, made once: two workspaces sharing a
 * workdir never share a folder.  0 or -errno. */
int dep_tag(const struct deploy_ctx *d, char *tag, size_t n)
{
	char path[PATH_MAX];
	unsigned int v;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", d->dir, DEP_REPLICAS);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/%s", d->dir, DEP_REPLICAS,
		 TAG_FILE);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%8x", &v) == 1) {
			fclose(f);
			snprintf(tag, n, "%08x", v);
			return 0;
		}
		fclose(f);
	}
	snprintf(tag, n, "%08x", ssh_rnd32());
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", tag);
	return fclose(f) ? -errno : 0;
}

/* ---- the table ---------------------------------------------------------- */

struct ssh_gen *gen_find(struct ssh_dep *dt, int64_t dep, int gen)
{
	for (struct ssh_gen *g = dt->gens; g; g = g->next)
		if (g->dep == dep && g->gen == gen)
			return g;
	return NULL;
}

struct ssh_gen *gen_get(struct ssh_dep *dt, const struct deploy_ctx *d,
			int gen, const char *tag)
{
	struct ssh_gen *g = gen_find(dt, d->obj.id, gen);

	if (g || !(g = calloc(1, sizeof(*g))))
		return g;
	g->dep = d->obj.id;
	g->gen = gen;
	snprintf(g->dir, sizeof(g->dir), "deploy-%lld-%s/g%d",
		 (long long)d->obj.id, tag, gen);
	g->next = dt->gens;
	dt->gens = g;
	return g;
}

void gen_drop(struct ssh_dep *dt, int64_t dep, int gen)
{
	for (struct ssh_gen **pp = &dt->gens, *g; (g = *pp);) {
		if (g->dep == dep && (gen < 0 || g->gen == gen)) {
			*pp = g->next;
			free(g);
		} else {
			pp = &g->next;
		}
	}
}

void trash_add(struct ssh_dep *dt, const char *rel)
{
	char **v;

	if (vec_grow(&dt->trash, &dt->trash_cap, dt->ntrash + 2, sizeof(*v)))
		return;
	v = dt->trash;
	v[dt->ntrash] = strdup(rel);
	if (v[dt->ntrash])
		v[++dt->ntrash] = NULL;
}

void trash_clear(struct ssh_dep *dt)
{
	for (int i = 0; i < dt->ntrash; i++)
		free(dt->trash[i]);
	free(dt->trash);
	dt->trash = NULL;
	dt->ntrash = 0;
	dt->trash_cap = 0;
}

struct ssh_rent *ent_new(struct ssh_dep *dt,
			 const struct deploy_ctx *d, int gen, int slot)
{
	struct ssh_rent *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->id = ++dt->next_id;
	x->dep = d->obj.id;
	x->gen = gen;
	x->slot = slot;
	x->code = -1;
	x->in_flight = -1;
	x->want_ready = 1;
	snprintf(x->name, sizeof(x->name), "%s", d->obj.name);
	snprintf(x->dir, sizeof(x->dir), "%s", d->dir);
	x->next = dt->reps;
	dt->reps = x;
	return x;
}

/* Unlink @x from the table, remove its record (an orphan's is gone
 * already: its slot may have a new one), put its folder in the trash,
 * and free it. */
void ent_drop(struct ssh_dep *dt, struct ssh_rent *x)
{
	for (struct ssh_rent **pp = &dt->reps; *pp; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	}
	if (!x->orphan)
		rec_remove(x);
	if (x->rdir[0])
		trash_add(dt, x->rdir);
	free(x);
}

/* Does a replica of @me's deployment other than @me use @port? */
int port_held(const struct ssh_dep *dt, const struct ssh_rent *me,
	      int port)
{
	for (const struct ssh_rent *x = dt->reps; x; x = x->next)
		if (x != me && !x->orphan && x->dep == me->dep &&
		    x->port == port)
			return 1;
	return 0;
}
