// SPDX-License-Identifier: MIT
#include "gpu.h"

#include "../backend/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int gpu_parse(const char *csv, struct gpu_info *gpus, int max)
{
	const char *line = csv;
	int n = 0;

	while (line && *line && n < max) {
		struct gpu_info g = { 0 };
		char name[96];

		if (sscanf(line, "%d , %95[^,] , %ld", &g.index, name,
			   &g.memory_mib) == 3) {
			snprintf(g.name, sizeof(g.name), "%s", name);
			gpus[n++] = g;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return n;
}

static int read_with_timeout(int fd, char *buf, size_t sz, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	ssize_t n;

	while (len + 1 < sz) {
		if (poll(&pfd, 1, ms) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf + len, sz - len - 1);
		if (n <= 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	return (int)len;
}

int gpu_detect(struct gpu_info *gpus, int max)
{
	char *argv[] = { "nvidia-smi", "--query-gpu=index,name,memory.total",
			 "--format=csv,noheader,nounits", NULL };
	posix_spawn_file_actions_t fa;
	char buf[8192];
	int pipefd[2], status, n = 0, rc;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, "nvidia-smi", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc) {
		close(pipefd[0]);
		return 0;
	}
	rc = read_with_timeout(pipefd[0], buf, sizeof(buf), 10000);
	close(pipefd[0]);
	if (rc < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		n = gpu_parse(buf, gpus, max);
	return n;
}

int gpu_pool_free(const struct gpu_pool *p)
{
	int n = 0;

	for (int i = 0; i < p->n && i < GPU_MAX; i++)
		n += !p->busy[i];
	return n;
}

void gpu_pool_take(struct gpu_pool *p, int64_t id, long want, char *list,
		   size_t sz)
{
	size_t off = 0;

	list[0] = '\0';
	for (int i = 0; i < p->n && i < GPU_MAX && want > 0; i++) {
		if (p->busy[i])
			continue;
		p->busy[i] = id;
		off += snprintf(list + off, off < sz ? sz - off : 0, "%s%d",
				off ? "," : "", i);
		want--;
	}
}

void gpu_pool_retake(struct gpu_pool *p, int64_t id, const char *list)
{
	const char *s = list;
	char *end;
	long i;

	while (*s) {
		i = strtol(s, &end, 10);
		if (end == s)
			break;
		if (i >= 0 && i < GPU_MAX)
			p->busy[i] = id;
		s = *end ? end + 1 : end;
	}
}

void gpu_pool_put(struct gpu_pool *p, int64_t id)
{
	for (int i = 0; i < GPU_MAX; i++)
		if (p->busy[i] == id)
			p->busy[i] = 0;
}

long nodes_gpus(const char *nodes)
{
	char name[128], state[64], mem[64];
	long cpus, gpus = 0;

	if (!nodes || sscanf(nodes, "%127s %63s %ld %63s %ld", name, state,
			     &cpus, mem, &gpus) != 5)
		gpus = 0;
	return gpus;
}

int check_one_node(const struct resources *res, const char *nodes,
		   const char *what, struct err *e)
{
	long have = nodes_gpus(nodes);

	if (res->nodes != 1)
		return err_set(e, -EINVAL, "%s runs on one node, but resources"
			       " asks for nodes = %ld", what, res->nodes);
	if (res->gpus > have)
		return err_set(e, -EINVAL, "the run asks for %ld GPU%s but the"
			       " target has %ld", res->gpus,
			       res->gpus == 1 ? "" : "s", have);
	return 0;
}
