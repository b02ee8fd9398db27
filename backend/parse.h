/* SPDX-License-Identifier: MIT */
/*
 * Pure parsers for everything a user or an engine writes into the tree:
 * object names, ctl lines, `key = value` config, env lines, resources,
 * durations and sizes.  No I/O, no globals, no allocation except where a
 * function says so: each can be unit-tested and fuzzed on its own.
 *
 * Every parser that can refuse takes a `struct err` and, on refusal, fills
 * it with one human sentence (no trailing newline) and returns a negative
 * errno (almost always -EINVAL).
 */
#ifndef MLFS_PARSE_H
#define MLFS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

#define MLFS_NAME_MAX	63	/* [A-Za-z0-9][A-Za-z0-9._-]{0,62} */

/*
 * name_valid - is @s a valid object name?
 * Returns 0, or -EINVAL with a sentence (too long, empty, bad character,
 * "." / "..").
 */
int name_valid(const char *s, struct err *e);

/* ---- ctl lines ---------------------------------------------------------- */

#define CTL_MAX_ARGS	4
#define CTL_WORD_MAX	256

struct ctl_cmd {
	int argc;				/* words on the line, >= 1 */
	char argv[CTL_MAX_ARGS][CTL_WORD_MAX];	/* argv[0] is the verb */
	uint32_t uid, gid;			/* who wrote it (ws_ctl sets
						 * them; ctl_split does not) */
};

/*
 * ctl_split - split a write to a ctl file into commands.
 * @buf, @len: the bytes written (not NUL-terminated; may hold NUL bytes).
 * @cmds, @max: output array.
 * Lines are separated by '\n'; blank lines and lines starting with '#' are
 * skipped; words are separated by blanks (space, tab); a trailing '\r' is
 * dropped.  Returns the number of commands (0 for only blank input), or
 * -EINVAL (NUL byte, control character, more than CTL_MAX_ARGS words, a
 * word longer than CTL_WORD_MAX-1, more than @max commands) with a sentence.
 */
int ctl_split(const char *buf, size_t len, struct ctl_cmd *cmds, int max,
	      struct err *e);

/* ---- key = value config ------------------------------------------------- */

struct kv {
	char *key;
	char *value;
};

struct kv_list {
	struct kv *items;
	int n;
};

/*
 * kv_parse - parse `key = value` lines.
 * Blank lines and lines whose first non-blank character is '#' are skipped;
 * blanks around key and value are trimmed; a value may be empty and may
 * contain '=' and '#'.  Keys are [a-z_][a-z0-9_]*; a key given twice,
 * a line without '=', a NUL byte or a control character other than tab is
 * -EINVAL with a sentence naming the line number.
 * On success @out owns malloc'd copies (free with kv_free).  -ENOMEM too.
 */
int kv_parse(const char *buf, size_t len, struct kv_list *out, struct err *e);
/* kv_parse, but the keys in @multi (NULL-terminated) may be given on
 * several lines (kept in order; kv_get returns the first). */
int kv_parse_multi(const char *buf, size_t len, struct kv_list *out,
		   const char *const *multi, struct err *e);
/* How many lines give @key. */
int kv_count(const struct kv_list *l, const char *key);
void kv_free(struct kv_list *l);
/* Returns the value of @key or NULL. */
const char *kv_get(const struct kv_list *l, const char *key);
/*
 * kv_check_keys - refuse keys not in the NULL-terminated @allowed list:
 * -EINVAL "unknown config key 'x' for type T (known: a, b)".
 */
int kv_check_keys(const struct kv_list *l, const char *const *allowed,
		  const char *type, struct err *e);

/* ---- env lines ---------------------------------------------------------- */

/*
 * env_parse - parse `KEY=VALUE` lines (no blanks around '=' needed, but
 * blanks before KEY are trimmed; the value is taken verbatim to end of line,
 * a trailing '\r' dropped).  Blank and '#' lines skipped.  KEY is
 * [A-Za-z_][A-Za-z0-9_]*.  Refused (-EINVAL): a bad key, a line without
 * '=', NUL bytes, a key starting with "MLFS_" (reserved), a key given twice.
 * On success @out holds "KEY=VALUE" strings in a kv_list (key, value split),
 * free with kv_free.
 */
int env_parse(const char *buf, size_t len, struct kv_list *out,
	      struct err *e);

/* ---- numbers, sizes, durations ------------------------------------------ */

/* A decimal integer in [min, max]; -EINVAL "<what> must be an integer from
 * min to max, not 'x'". */
int parse_int(const char *s, long min, long max, long *out, const char *what,
	      struct err *e);

/* "512M", "1G", "1.5G", "2048" (MiB when no suffix), K/M/G/T (binary).
 * Result in MiB (rounded up), > 0. */
int parse_mem_mib(const char *s, uint64_t *mib, struct err *e);

/* Slurm-style durations: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S",
 * or with a unit "90s", "10m", "2h", "1d".  Result in seconds, > 0. */
int parse_duration(const char *s, uint64_t *secs, struct err *e);

/* ---- resources ---------------------------------------------------------- */

struct resources {
	long nodes;		/* default 1, 1..1024 */
	long cpus;		/* per node (per task), default 1, 1..4096;
				 * a fraction (0.5) rounds up here */
	long cpu_milli;		/* the exact amount in thousandths (500), for
				 * a CPU quota; 0 = cpus not set, no quota */
	long gpus;		/* per node, default 0, 0..64 */
	uint64_t memory_mib;	/* per node, 0 = not set */
	uint64_t time_secs;	/* 0 = no limit */
	long procs_per_node;	/* processes started on each node, default
				 * 1, 1..256; gpus splits evenly across them */
	char array[256];	/* `array` as written (lib/array.h), "" none */
	long array_n;		/* its tasks, 0: not an array */
	long array_max;		/* %M: tasks at once, 0: not given */
};

/*
 * resources_parse - parse the `resources` file (key = value lines; keys
 * nodes, cpus, gpus, memory, time, procs_per_node, array).  Missing keys
 * take the defaults above; an empty buffer is all defaults.  Unknown keys,
 * bad values, gpus that do not split evenly across procs_per_node and an
 * array of a run of several nodes or processes: -EINVAL.
 */
int resources_parse(const char *buf, size_t len, struct resources *r,
		    struct err *e);

/* ---- metrics ------------------------------------------------------------ */

/*
 * metric_parse_line - one line a run appended to $MLFS_METRICS:
 * `name value [step]` (blank-separated; name [A-Za-z0-9_.:/-]{1,128};
 * value a finite double; step a non-negative integer).  @line is
 * NUL-terminated without its newline.  Returns 1 with a step, 0 without,
 * -EINVAL for a malformed line.
 */
int metric_parse_line(const char *line, char *name, size_t name_sz,
		      double *value, long long *step);

/*
 * param_parse_line - one line a run appended to $MLFS_PARAMS: `name value`
 * (name as a metric's; value: the rest of the line, any text, blanks
 * around it dropped, 1..PARAM_VALUE_MAX bytes).  0 with @name filled and
 * *@value, *@value_len pointing into @line; -EINVAL for a malformed line.
 */
#define PARAM_VALUE_MAX	1024
#define METRIC_NAME_BUF	129	/* a name of 128 and its NUL */
int param_parse_line(const char *line, char *name, size_t name_sz,
		     const char **value, size_t *value_len);

/*
 * metric_param_line - a $MLFS_METRICS line metric_parse_line refused: a
 * param when its value is text (`kernel linear`), as param_parse_line
 * says; -EINVAL when it is no param either, e.g. its value is a number
 * and its step is not (`loss 0.3 x`): a malformed metric.
 */
int metric_param_line(const char *line, char *name, size_t name_sz,
		      const char **value, size_t *value_len);

/* ---- text helpers ------------------------------------------------------- */

/*
 * first_word - copy the first blank-separated word of @buf (up to the first
 * newline) into @out.  Used for one-value files like `target` and `type`.
 * Returns 0 (empty @out for a blank file), -EINVAL if a second word
 * follows on that line or a later line is non-blank, or the word does not
 * fit @out_sz.
 */
int first_word(const char *buf, size_t len, char *out, size_t out_sz,
	       struct err *e);

/* ---- after (runs a run waits for) ---------------------------------------- */

#define AFTER_MAX	32

struct after_dep {
	char name[MLFS_NAME_MAX + 1];
	int any;		/* 1: any final state will do; 0: Completed */
};

struct after_list {
	struct after_dep deps[AFTER_MAX];
	int n;
};

/*
 * after_parse - the `after` file of a run: one run per line, `NAME` or
 * `NAME Completed` (it must complete) or `NAME any` (it must only end).
 * Blank and '#' lines skipped.  -EINVAL with a sentence: a bad name, a
 * third word, another mode, a name given twice, more than AFTER_MAX.
 */
int after_parse(const char *buf, size_t len, struct after_list *out,
		struct err *e);

/* ---- inputs (what a run reads by reference) ------------------------------ */

#define INPUTS_MAX	32
#define INPUT_NAME_MAX	63	/* [A-Za-z_][A-Za-z0-9_]*: $MLFS_INPUT_<NAME> */
#define INPUT_PATH_MAX	1024

enum input_kind {
	INPUT_PATH,		/* an absolute path on the daemon's machine */
	INPUT_RUN,		/* runs/RUN/outputs[/SUB] */
	INPUT_MODEL,		/* models/MODEL/VERSION[/SUB] */
};

struct input {
	char name[INPUT_NAME_MAX + 1];
	enum input_kind kind;
	char obj[MLFS_NAME_MAX + 1];	/* RUN or MODEL */
	char ver[MLFS_NAME_MAX + 1];	/* VERSION */
	char path[INPUT_PATH_MAX];	/* INPUT_PATH: the path; else SUB
					 * ("" for the folder itself) */
};

struct input_list {
	struct input in[INPUTS_MAX];
	int n;
};

/*
 * inputs_parse - the `inputs` file of a run: lines `NAME PATH`, PATH to
 * the end of the line (spaces allowed), one of /ABSOLUTE/PATH,
 * runs/RUN/outputs[/SUB] or models/MODEL/VERSION[/SUB]; blank and '#'
 * lines skipped.  -EINVAL with a sentence: a bad or repeated NAME, a
 * relative path of another shape, a `..` in SUB, a control byte, more
 * than INPUTS_MAX lines.  @out is large: allocate it.
 */
int inputs_parse(const char *buf, size_t len, struct input_list *out,
		 struct err *e);

#endif /* MLFS_PARSE_H */
