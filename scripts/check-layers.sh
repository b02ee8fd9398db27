#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Check the layering of the C source: fs/, backend/, targets/ and lib/.
#
#   scripts/check-layers.sh [--allow FILE] [ROOT]
#
# ROOT is the source tree (default: this script's repository).  The check
# reads the `#include "…"` lines of every .c and .h file in the four
# folders, and which functions each .c file defines and names (calls, or
# takes the address of), and fails (exit 1) naming the edge when:
#
#  1. a file includes a header, or names a function, of a folder it may
#     not use.  The folders in the order of their dependencies:
#
#        fs/   targets/     peers: neither uses the other
#           \  /
#         backend/
#            |
#          lib/            the floor: includes and calls only lib/ and libc
#
#     At run time the calls go fs → backend → targets (DESIGN.md), but the
#     backend reaches a driver only through the `struct driver` ops table
#     it declares in backend/driver.h; a driver includes that interface and
#     reports back through the ws_* functions of backend/ws.h.  So in the
#     source targets/ depends on backend/ and never the reverse, and
#     driver.h needs no exception: including it is a downward edge for a
#     driver.  (The table of drivers in backend/driver.c names each
#     driver's ops table, a variable: variables are not followed here.)
#  2. a private header (NAME_i.h) is included from another folder;
#  3. there is a cycle between modules, inside a folder too: a module is a
#     .c file with its .h and _i.h (ws.c, ws.h, ws_i.h are backend/ws).
#     An include cycle: a's files include b's header while b's include
#     a's, possibly through others.  A call cycle: a.c names a function
#     defined in b.c while b.c names one of a.c's, possibly through
#     others (static functions are their file's own).
#
# It prints the layer graph (edges between folders, with counts) and, on
# success, "no cycles".  Entries of the allow file (default
# ROOT/scripts/layers-allow.txt when present; one violation line as this
# script prints it, `#` comments) are reported but do not fail the check,
# so that a known debt can be paid off step by step; an entry that no
# longer occurs fails it ("remove it"), so that the file only shrinks.
set -euo pipefail

allow=
if [[ ${1:-} == --allow ]]; then
	allow=${2:?--allow needs a file}
	shift 2
fi
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
[[ -n $allow || ! -f $root/scripts/layers-allow.txt ]] ||
	allow=$root/scripts/layers-allow.txt

exec /usr/bin/python3 - "$root" "$allow" <<'PY'
import os
import re
import sys

ROOT, ALLOW = sys.argv[1], sys.argv[2]
RANK = {'lib': 0, 'backend': 1, 'targets': 2, 'fs': 2}
INC_DIRS = ['.', 'backend', 'targets', 'lib']	# meson's, for bare names


def strip_comments(text):
	"""Comments become blanks (newlines kept); strings stay."""
	out, i, n = [], 0, len(text)
	while i < n:
		c = text[i]
		if text.startswith('/*', i):
			j = text.find('*/', i + 2)
			j = n if j < 0 else j + 2
			out.append(re.sub(r'[^\n]', ' ', text[i:j]))
			i = j
		elif text.startswith('//', i):
			j = text.find('\n', i)
			j = n if j < 0 else j
			i = j
		elif c in '"\'':
			j = i + 1
			while j < n and text[j] != c and text[j] != '\n':
				j += 2 if text[j] == '\\' else 1
			out.append(text[i:j + 1])
			i = j + 1
		else:
			out.append(c)
			i += 1
	return ''.join(out)


def strip_strings(code):
	"""String and character literals become "" and ''."""
	return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
		      lambda m: m.group(0)[0] * 2, code)


def module(rel):
	d, b = os.path.split(rel)
	stem = re.sub(r'\.[ch]$', '', b)
	return d + '/' + re.sub(r'_i$', '', stem)


def resolve(src, name):
	cands = [os.path.join(os.path.dirname(src), name)]
	cands += [os.path.join(d, name) for d in INC_DIRS]
	for c in cands:
		c = os.path.normpath(c)
		if os.path.isfile(os.path.join(ROOT, c)):
			return c
	return None


def files():
	out = []
	for d in RANK:
		p = os.path.join(ROOT, d)
		if os.path.isdir(p):
			out += [d + '/' + f for f in sorted(os.listdir(p))
				if f.endswith(('.c', '.h'))]
	return out


def end_of_parens(code, i):
	depth = 0
	for j in range(i, len(code)):
		if code[j] == '(':
			depth += 1
		elif code[j] == ')':
			depth -= 1
			if not depth:
				return j + 1
	return len(code)


DEF_RE = re.compile(r'^[A-Za-z_][\w \t*]*?\b([A-Za-z_]\w*)[ \t]*\(', re.M)
# A name used as a name: not a member (.x, ->x) nor a struct tag.
USE_RE = re.compile(r'(?<![.\w])(?<!->)(?<!struct )(?<!union )([A-Za-z_]\w*)')
ATTR_RE = re.compile(r'\s*(__attribute__\s*)?')


def definitions(code):
	"""{name: is_static} of the functions @code defines (kernel style:
	a definition starts at column 0)."""
	defs = {}
	for m in DEF_RE.finditer(code):
		if m.group(1) in ('if', 'while', 'for', 'switch', 'return'):
			continue
		j = end_of_parens(code, m.end() - 1)
		while True:
			a = ATTR_RE.match(code, j)
			if not a.group(1):
				j = a.end()
				break
			j = end_of_parens(code, a.end())
		if j < len(code) and code[j] == '{':
			defs[m.group(1)] = m.group(0).startswith('static')
	return defs


def scan():
	inc, code = {}, {}
	for rel in files():
		with open(os.path.join(ROOT, rel), errors='replace') as f:
			text = strip_comments(f.read())
		inc[rel] = []
		for m in re.finditer(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"',
				     text, re.M):
			h = resolve(rel, m.group(1))
			if h and h.split('/')[0] in RANK:
				inc[rel].append(h)
		text = re.sub(r'^[ \t]*#[ \t]*include.*$', '', text, flags=re.M)
		code[rel] = strip_strings(text)
	return inc, code


def call_edges(code):
	"""{(a.c, b.c): a function of b.c that a.c names}."""
	defs = {f: definitions(c) for f, c in code.items() if f.endswith('.c')}
	owner = {}
	for f, d in defs.items():
		for name, static in d.items():
			if not static:
				owner.setdefault(name, []).append(f)
	edges = {}
	for f, d in defs.items():
		for name in sorted(set(USE_RE.findall(code[f]))):
			if name in d:
				continue
			for g in owner.get(name, []):
				edges.setdefault((f, g), name)
	return edges


def include_edges(inc):
	"""{(module a, module b): "a's file includes b's header"}."""
	edges = {}
	for f, hs in inc.items():
		for h in hs:
			if module(f) != module(h):
				edges.setdefault((module(f), module(h)),
						 f + ' includes ' + h)
	return edges


def sccs(edges):
	"""The strongly connected components of more than one node."""
	graph = {}
	for a, b in edges:
		graph.setdefault(a, []).append(b)
		graph.setdefault(b, [])
	index, low, stack, on, out = {}, {}, [], set(), []

	def visit(v):
		index[v] = low[v] = len(index)
		stack.append(v)
		on.add(v)
		for w in graph[v]:
			if w not in index:
				visit(w)
				low[v] = min(low[v], low[w])
			elif w in on:
				low[v] = min(low[v], index[w])
		if low[v] == index[v]:
			comp = []
			while True:
				w = stack.pop()
				on.discard(w)
				comp.append(w)
				if w == v:
					break
			if len(comp) > 1:
				out.append(sorted(comp))

	sys.setrecursionlimit(10000)
	for v in sorted(graph):
		if v not in index:
			visit(v)
	return sorted(out)


def folder(p):
	return p.split('/')[0]


def may_use(a, b):
	return a == b or RANK[b] < RANK[a]


def layer_violations(inc, calls):
	out = []
	for f, hs in sorted(inc.items()):
		for h in hs:
			if not may_use(folder(f), folder(h)):
				out.append(('upward include: %s -> %s' % (f, h), []))
			elif folder(f) != folder(h) and h.endswith('_i.h'):
				out.append(('private header: %s -> %s' % (f, h), []))
	for (f, g), name in sorted(calls.items()):
		if not may_use(folder(f), folder(g)):
			out.append(('upward call: %s -> %s (%s)' % (f, g, name), []))
	return out


def cycle_violations(kind, edges, how):
	out = []
	for comp in sccs(edges):
		inside = sorted((a, b) for a, b in edges
				if a in comp and b in comp)
		out.append(('%s cycle: %s' % (kind, ' '.join(comp)),
			    [how(a, b, edges[(a, b)]) for a, b in inside]))
	return out


def print_graph(inc, calls):
	count = {}
	for f, hs in inc.items():
		for h in hs:
			if folder(f) != folder(h):
				k = (folder(f), folder(h))
				count.setdefault(k, [0, 0])[0] += 1
	for f, g in calls:
		if folder(f) != folder(g):
			count.setdefault((folder(f), folder(g)), [0, 0])[1] += 1
	print('layers (includes, function names used across folders):')
	for a in sorted(RANK, key=lambda x: (-RANK[x], x)):
		used = sorted((k[1] for k in count if k[0] == a),
			      key=lambda x: (-RANK[x], x))
		parts = ['%s (%d includes, %d functions)%s' %
			 (b, count[(a, b)][0], count[(a, b)][1],
			  '' if may_use(a, b) else ' UPWARD')
			 for b in used]
		print('  %-8s -> %s' % (a, ', '.join(parts) or '(nothing)'))


def read_allow():
	if not ALLOW:
		return []
	with open(ALLOW) as f:
		return [l.strip() for l in f
			if l.strip() and not l.lstrip().startswith('#')]


def main():
	inc, code = scan()
	calls = call_edges(code)
	found = layer_violations(inc, calls)
	found += cycle_violations('include', include_edges(inc),
				  lambda a, b, how: how)
	found += cycle_violations('call', calls, lambda a, b, name:
				  '%s uses %s() of %s' % (a, name, b))
	print_graph(inc, calls)
	allowed = read_allow()
	bad = 0
	for line, details in found:
		tag = 'allowed: ' if line in allowed else ''
		bad += not tag
		print(tag + line)
		for d in details:
			print('    ' + d)
	for line in allowed:
		if line not in [l for l, _ in found]:
			bad += 1
			print('gone, remove it from %s: %s' % (ALLOW, line))
	cycles = [l for l, _ in found if ' cycle: ' in l]
	if bad:
		print('%d layering error(s)' % bad)
		return 1
	if cycles:
		print('no cycles beyond the %d allowed in %s' % (len(cycles),
								 ALLOW))
	else:
		print('no cycles')
	return 0


sys.exit(main())
PY
