/* SPDX-License-Identifier: MIT */
/*
 * An array run on an ssh target (resources `array`): what the daemon
 * knows of its tasks, learned from the poll (the launcher's tasks.ev and
 * the tasks' logs on the host, see ssh_script.h) and written to the run's
 * tasks/I/{status,exit_code,log} with the backend's writers.  Worker
 * thread only; in ssh_array.c.
 */
#ifndef MLFS_SSH_ARRAY_H
#define MLFS_SSH_ARRAY_H

#include "../backend/driver.h"
#include "ssh_script.h"

#define SSH_ASK_MAX	256		/* task logs read per run and round */

struct ssh_task {
	int idx;
	char st;			/* 'Q'ueued, 'R'unning, 'E'nded */
	long long off;			/* bytes of its log here */
	long long size;			/* its log's final size, -1 unknown */
};

struct ssh_arr {
	int n;
	struct ssh_task *t;		/* by index, ascending */
	long long ev_off;		/* bytes of tasks.ev applied */
	long long ev_size;		/* its size at the last poll */
	int cursor;			/* where the next round's asks start */
};

/*
 * ssh_arr_new - the tasks of @r: tasks/I made Queued where missing; the
 * state of those made before (an adopted run) read back, tasks.ev then
 * read again from its start.  NULL with -errno in *@rc.
 */
struct ssh_arr *ssh_arr_new(struct run_ctx *r, int *rc);
void ssh_arr_free(struct ssh_arr *a);

/* The logs to read this round (running tasks, ended ones not caught up),
 * at most SSH_ASK_MAX, @budget bytes in all: how many, into @out. */
int ssh_arr_asks(struct ssh_arr *a, long long budget,
		 struct ssh_task_ask *out);

/* Apply @p's tasks.ev lines and task logs to tasks/.  1 when the daemon
 * has every line of tasks.ev and every byte of an ended task's log. */
int ssh_arr_take(struct ssh_arr *a, struct run_ctx *r,
		 const struct ssh_poll_reply *p);

#endif
