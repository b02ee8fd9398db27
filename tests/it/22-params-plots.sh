#!/usr/bin/env bash
# Params and pictures: $MLFS_PARAMS and text metrics -> params (a later
# value replaces), a malformed line named once in error, the mlfs Python
# module (several processes at once, outside a run, a user's PYTHONPATH),
# metrics.svg updating while the run goes, runs/index.html, each picture
# drawn by a real browser (Debian's chromium, headless) and by rsvg and
# checked by its pixels; hostile input, another user, kill -9 + remount.
source "$(dirname "$0")/../lib.sh"

PY=/usr/bin/python3		# Debian's: python3-pil (scripts/deps.sh test)
PIX="$ROOT/tests/pixels.py"
BLUE=1f77b4			# lib/plot.c's palette: chart 0, sparklines
RED=d62728			# chart 1
# the plot area of chart I of metrics.svg (lib/plot.c's fixed layout)
area() { echo 72 $((28 + $1 * 240 + 34 + 2)) 696 $((28 + $1 * 240 + 196 - 2)); }

mk() {
	mkdir "$MNT/runs/$1" || return 1
	wr "$MNT/runs/$1/command" "$2"
}
submit() { wr "$MNT/runs/$1/ctl" submit; }
# shot URL PNG W H: a screenshot by headless chromium, bounded in time
shot() {
	rm -f "$2"
	timeout 180 chromium --headless --no-sandbox --disable-gpu \
		--hide-scrollbars --user-data-dir="$T/chromium" \
		--screenshot="$2" --window-size="$3,$4" "$1" >"$T/chromium.log" 2>&1
	[[ -s $2 ]]
}
count() { $PY "$PIX" count "$@"; }
# more LIMIT COMMAND...: COMMAND prints a number greater than LIMIT
more() {
	local n lim=$1
	shift
	n=$("$@")
	[[ $n -gt $lim ]] || { echo "# got $n, want > $lim" >&2; return 1; }
}
# none COMMAND...: COMMAND prints 0
none() {
	local n
	n=$("$@")
	[[ $n -eq 0 ]] || { echo "# got $n, want 0" >&2; return 1; }
}
has_line() { grep -qxF -- "$2" "$1"; }

mu_users mlfs_ua mlfs_ub
mount_or_bail "mount as root with allow_other" -o allow_other

# ---- params: $MLFS_PARAMS, text metrics, a later value replaces ------------------
mk p 'echo "lr 0.1" >> "$MLFS_PARAMS"; echo "lr 0.2" >> "$MLFS_PARAMS"
echo "note  two words  " >> "$MLFS_PARAMS"
echo "kernel linear" >> "$MLFS_METRICS"; echo "loss 0.5 3" >> "$MLFS_METRICS"
printf "partial 1" >> "$MLFS_PARAMS"'
submit p
check "p Completed" wait_final "$MNT/runs/p" 30
check "params: lr, its later value" has_line "$MNT/runs/p/params" "lr 0.2"
eq "params: a name once" 1 "$(grep -c '^lr ' "$MNT/runs/p/params")"
check "params: text to the end of the line, blanks around dropped" \
	has_line "$MNT/runs/p/params" "note two words"
check "a text metric is a param" has_line "$MNT/runs/p/params" "kernel linear"
check "a text metric is not in metrics" eval '! grep -q kernel "$MNT/runs/p/metrics"'
check "a number stays a metric" grep -q "^loss 0.5 3 " "$MNT/runs/p/metrics"
check "a line without its newline waits" eval '! grep -q partial "$MNT/runs/p/params"'
eq "no error for good lines" "" "$(cat "$MNT/runs/p/error")"
check "info.json still JSON" json_ok "$MNT/runs/p/info.json"
expect_err "params is read-only" "Permission denied" wr "$MNT/runs/p/params" "x y"
expect_err "metrics.svg is read-only" "Permission denied" \
	wr "$MNT/runs/p/metrics.svg" "<svg/>"

# ---- malformed lines: named once, the good ones kept -------------------------------
mk bad 'for i in 1 2 3; do echo "loss 0.3 x$i" >> "$MLFS_METRICS"; done
echo "loss nan" >> "$MLFS_METRICS"; echo "bad\$name 1" >> "$MLFS_PARAMS"
echo "acc 0.9 1" >> "$MLFS_METRICS"; echo "opt adam" >> "$MLFS_PARAMS"'
submit bad
check "bad Completed (a bad line fails nothing)" wait_final "$MNT/runs/bad" 30
check "the first malformed line is named in error" \
	wait_until 10 grep -q "line 'loss 0.3 x1' is malformed" "$MNT/runs/bad/error"
check "error is one sentence" has_sentence "$MNT/runs/bad/error"
eq "one events line for all the malformed lines" 1 \
	"$(ev_count 'run bad error: .*malformed')"
check "good metrics after bad ones kept" grep -q "^acc 0.9 1 " "$MNT/runs/bad/metrics"
check "good params after bad ones kept" has_line "$MNT/runs/bad/params" "opt adam"
check "nan is not a param" eval '! grep -q "^loss" "$MNT/runs/bad/params"'

# ---- hostile: long values, too many names, markup ----------------------------------
mk hostile "python3 - <<'EOF'
import os
p = open(os.environ['MLFS_PARAMS'], 'a')
p.write('big ' + 'v' * 5000 + '\n')
p.write('html <script>alert(1)</script> & \"q\"\n')
for i in range(1100):
    p.write('k%d %d\n' % (i, i))
p.close()
m = open(os.environ['MLFS_METRICS'], 'a')
m.write('x' * 100000 + '\n')
m.write('ok 1 1\n')
EOF"
submit hostile
check "hostile Completed" wait_final "$MNT/runs/hostile" 30
check "an over-long value is refused" eval '! grep -q "^big " "$MNT/runs/hostile/params"'
check "markup is kept as text in params" has_line "$MNT/runs/hostile/params" \
	'html <script>alert(1)</script> & "q"'
eq "at most 1000 names" 1000 "$(wc -l < "$MNT/runs/hostile/params")"
check "the first malformed line named in error, cut short" \
	grep -qE "line '(big v{56}|x{60})' is malformed" "$MNT/runs/hostile/error"
check "a 100 kB metrics line does not stop the rest" \
	wait_until 10 grep -q "^ok 1 1 " "$MNT/runs/hostile/metrics"

# ---- the end: the last lines are in before the state says so -----------------------
# Read at once after the blocking `wait` returns (no polling delay): a run
# whose last lines were taken in only after its state changed showed a
# short params and metrics (375 of 1000 lines, once in five CI runs).
for i in 1 2 3 4 5 6; do
	mk "end$i" "python3 - <<'EOF'
import os
p = open(os.environ['MLFS_PARAMS'], 'a')
m = open(os.environ['MLFS_METRICS'], 'a')
for i in range(800):
    p.write('k%d %d\\n' % (i, i))
    m.write('loss %d %d\\n' % (i, i))
p.write('bad\$name 1\\n')
EOF"
	submit "end$i"
	timeout 60 cat "$MNT/runs/end$i/wait" > /dev/null
	eq "end$i: every params line, read as the run ends" 800 \
		"$(wc -l < "$MNT/runs/end$i/params")"
	eq "end$i: every metrics line, read as the run ends" 800 \
		"$(wc -l < "$MNT/runs/end$i/metrics")"
	check "end$i: its malformed last line named, read as the run ends" \
		grep -q 'is malformed' "$MNT/runs/end$i/error"
done

# ---- the Python module ----------------------------------------------------------
mk py "python3 - <<'EOF'
import multiprocessing as mp, mlfs, sys
def work(k):
    for i in range(500):
        mlfs.log_many({'w': k, 'x%d' % k: i}, step=i)
    mlfs.param('worker%d' % k, 'done')
if __name__ == '__main__':
    ps = [mp.Process(target=work, args=(k,)) for k in range(4)]
    [p.start() for p in ps]; [p.join() for p in ps]
    mlfs.log('loss', 0.25, step=7)
    mlfs.log('kernel', 'rbf')
    mlfs.param('lr', 0.01)
    mlfs.params({'batch': 64, 'opt': 'sgd momentum'})
    mlfs.log('flag', True)
    for bad in (lambda: mlfs.log('no spaces', 1), lambda: mlfs.log('x', 1, step=-1)):
        try:
            bad(); print('accepted')
        except ValueError:
            print('refused')
    print('path', ':'.join(sys.path))
EOF"
wr "$MNT/runs/py/env" "PYTHONPATH=/opt/mine"
submit py
check "py Completed" wait_final "$MNT/runs/py" 60
eq "py exit 0" 0 "$(cat "$MNT/runs/py/exit_code")"
eq "4 processes x 500 lines of w, none lost" 2000 \
	"$(grep -c '^w ' "$MNT/runs/py/metrics")"
eq "every metrics line whole (4 words)" 0 \
	"$(awk 'NF != 4' "$MNT/runs/py/metrics" | wc -l)"
eq "each process's steps all there" 500 "$(grep -c '^x3 ' "$MNT/runs/py/metrics")"
check "mlfs.log with a step" grep -q "^loss 0.25 7 " "$MNT/runs/py/metrics"
check "mlfs.log of text is a param" has_line "$MNT/runs/py/params" "kernel rbf"
check "mlfs.param" has_line "$MNT/runs/py/params" "lr 0.01"
check "mlfs.params" has_line "$MNT/runs/py/params" "opt sgd momentum"
check "a param from each process" eval '[[ $(grep -c "^worker. done" "$MNT/runs/py/params") -eq 4 ]]'
check "a bool is a number" grep -q "^flag 1 " "$MNT/runs/py/metrics"
eq "bad names and steps raise ValueError" "refused refused" \
	"$(grep -x 'refused\|accepted' "$MNT/runs/py/log" | tr '\n' ' ' | sed 's/ $//')"
check "the user's PYTHONPATH first, then mlfs's" \
	grep -q "^path .*/opt/mine:.*$(dirname "$MLFS")" "$MNT/runs/py/log"
check "outside a run, mlfs does nothing and raises nothing" \
	env -u MLFS_METRICS -u MLFS_PARAMS PYTHONPATH="$(dirname "$MLFS")" \
	$PY -c 'import mlfs; mlfs.log("a", 1); mlfs.param("b", "c")'
# ssh hosts have no $MLFS_PARAMS: params ride in the metrics file
check "without MLFS_PARAMS, a param goes to metrics as @param" eval \
	'[[ $(cd "$T" && MLFS_METRICS=$T/m.raw PYTHONPATH=$(dirname "$MLFS") \
	$PY -c "import mlfs; mlfs.param(\"lr\", 0.5)" && cat "$T/m.raw") == "@param lr 0.5" ]]'
mk at 'echo "@param lr 0.5" >> "$MLFS_METRICS"; echo "@param bad" >> "$MLFS_METRICS"'
submit at
check "at Completed" wait_final "$MNT/runs/at" 30
check "@param in metrics: a param even when it is a number" \
	has_line "$MNT/runs/at/params" "lr 0.5"
check "@param without a value is named in error" grep -q "'@param bad'" \
	"$MNT/runs/at/error"

# ---- metrics.svg, while the run goes -----------------------------------------------
mk live "python3 - <<'EOF'
import mlfs, os, time
for i in range(10):
    mlfs.log('loss', 1.0 / (1 + i), step=i)
    mlfs.log('acc', i / 20.0, step=i)
while not os.path.exists('$T/go-live'):
    time.sleep(0.05)
for i in range(10, 20):
    mlfs.log('loss', 1.0 / (1 + i), step=i)
    mlfs.log('acc', i / 20.0, step=i)
EOF"
submit live
check "live Running" wait_for "$MNT/runs/live/status" Running 30
check "metrics.svg shows the first 10 steps while running" \
	wait_until 20 grep -q "last 0.1 at step 9 (10 points)" "$MNT/runs/live/metrics.svg"
eq "live still Running" Running "$(cat "$MNT/runs/live/status")"
check "index: a running run shows since when" \
	grep -q '>live</a></td><td class="Running">Running</td><td>since 20' \
	"$MNT/runs/index.html"
touch "$T/go-live"
check "metrics.svg follows: 20 steps" \
	wait_until 20 grep -q "last 0.05 at step 19 (20 points)" "$MNT/runs/live/metrics.svg"
check "live Completed" wait_final "$MNT/runs/live" 30
check "metrics.svg is well-formed XML" $PY -c \
	'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' \
	"$MNT/runs/live/metrics.svg"

# rsvg draws it: the lines in their charts
check "rsvg-convert draws metrics.svg" \
	rsvg-convert -o "$T/live-rsvg.png" "$MNT/runs/live/metrics.svg"
check "rsvg: chart 0's line (blue) in its plot area" \
	more 100 count "$T/live-rsvg.png" $(area 0) $BLUE
check "rsvg: chart 1's line (red) in its plot area" \
	more 100 count "$T/live-rsvg.png" $(area 1) $RED
check "rsvg: no red in chart 0" none count "$T/live-rsvg.png" $(area 0) $RED 20

# a real browser draws it
if ! command -v chromium >/dev/null; then
	not_ok "chromium is missing: scripts/deps.sh test installs it"
elif check "chromium draws metrics.svg" \
	shot "file://$MNT/runs/live/metrics.svg" "$T/live.png" 720 508; then
	eq "the screenshot is the window" "720 508" "$($PY "$PIX" size "$T/live.png")"
	check "chromium: chart 0's line in its plot area" \
		more 200 count "$T/live.png" $(area 0) $BLUE
	check "chromium: chart 1's line in its plot area" \
		more 200 count "$T/live.png" $(area 1) $RED
	check "chromium: no red in chart 0, no blue in chart 1" eval \
		'none count "$T/live.png" $(area 0) $RED 20 && none count "$T/live.png" $(area 1) $BLUE 20'
	# loss falls: its line is high on the left, low on the right
	check "chromium: loss starts high (blue in the top-left)" \
		more 5 count "$T/live.png" 72 64 140 110 $BLUE
	check "chromium: loss ends low (blue in the bottom-right)" \
		more 5 count "$T/live.png" 600 180 696 222 $BLUE
	check "chromium: axes and labels drawn (dark pixels left of the plot)" \
		more 30 count "$T/live.png" 0 62 70 224 000000 90
	check "chromium: not blank (many colours)" \
		more 20 $PY "$PIX" colours "$T/live.png" 0 0 720 508
fi

# a run without metrics says so, in a picture
mk quiet "true"
submit quiet
check "quiet Completed" wait_final "$MNT/runs/quiet" 30
check "a run without metrics: 'no metrics yet'" \
	wait_until 10 grep -q "no metrics yet" "$MNT/runs/quiet/metrics.svg"
check "rsvg: no line drawn" eval 'rsvg-convert -o "$T/quiet.png" \
	"$MNT/runs/quiet/metrics.svg" && none count "$T/quiet.png" 0 0 720 268 $BLUE 20'

# ---- 100,000 points ---------------------------------------------------------------
mk big "python3 gen.py"
cat > "$MNT/runs/big/gen.py" <<'EOF'
import os
with open(os.environ['MLFS_METRICS'], 'a') as f:
    f.write(''.join('loss %.5f %d\n' % (1.0 / (1 + i % 1000), i)
                    for i in range(100000)))
EOF
submit big
check "big Completed" wait_final "$MNT/runs/big" 60
check "metrics.svg of 100,000 points" \
	wait_until 30 grep -q "(100000 points)" "$MNT/runs/big/metrics.svg"
check "  ... is small (< 64 kB)" eval '(( $(stat -c %s "$MNT/runs/big/metrics.svg") < 65536 ))'

# ---- runs/index.html ---------------------------------------------------------------
check "runs/ lists index.html" eval 'ls "$MNT/runs" | grep -qx index.html'
expect_err "no run may be named index.html" "File exists" mkdir "$MNT/runs/index.html"
expect_err "index.html cannot be removed" "Operation not permitted" rm -f "$MNT/runs/index.html"
expect_err "index.html cannot be written" "Permission denied" wr "$MNT/runs/index.html" x
cat "$MNT/runs/index.html" > /dev/null
mkdir "$MNT/runs/fresh1"
check "index: a run made after a read is listed at once" \
	grep -q ">fresh1<" "$MNT/runs/index.html"
rmdir "$MNT/runs/fresh1"
check "index: a run removed is gone at once" \
	eval '! grep -q ">fresh1<" "$MNT/runs/index.html"'
mkdir "$MNT/runs/draft1"
check "a run cannot be renamed to index.html" eval \
	'! mv "$MNT/runs/draft1" "$MNT/runs/index.html" 2>/dev/null && [[ -d $MNT/runs/draft1 ]]'
cat > "$T/rows.py" <<'EOF'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    rows, cells, row, cell, svg = [], None, None, None, 0
    def handle_starttag(self, tag, a):
        if tag == 'tr': self.row = []
        if tag == 'td': self.cell = ''
        if tag == 'svg': self.svg += 1
    def handle_endtag(self, tag):
        if tag == 'td': self.row.append(self.cell.strip()); self.cell = None
        if tag == 'tr' and self.row: P.rows.append(self.row)
    def handle_data(self, d):
        if self.cell is not None: self.cell += d
p = P(); p.feed(open(sys.argv[1]).read())
for r in P.rows: print('|'.join(r))
print('svgs', p.svg)
EOF
$PY "$T/rows.py" "$MNT/runs/index.html" > "$T/rows"
check "index: a row for live, Completed, a duration, last loss" \
	grep -qE '^live\|Completed\|[0-9]+:[0-9]{2}:[0-9]{2}\|0.05' "$T/rows"
check "index: a Draft has a row, no duration" grep -qx 'draft1|Draft|.*' "$T/rows"
eq "index: one row per run" "$(ls "$MNT/runs" | grep -vcx index.html)" \
	"$(grep -vc '^svgs' "$T/rows")"
check "index: sparklines" grep -qE '^svgs [1-9]' "$T/rows"
eq "index: two reads, same bytes (nothing changed)" \
	"$(md5sum < "$MNT/runs/index.html")" "$(md5sum < "$MNT/runs/index.html")"
if command -v chromium >/dev/null &&
	check "chromium draws runs/index.html" \
		shot "file://$MNT/runs/index.html" "$T/index.png" 900 600; then
	check "chromium: the sparklines' colour on the page" \
		more 40 count "$T/index.png" 0 0 900 600 $BLUE 30
	check "chromium: the Completed status colour" \
		more 20 count "$T/index.png" 0 0 900 600 2ca02c 30
fi

# ---- another user sees only the runs they may look into ------------------------
as mlfs_ua mkdir "$MNT/runs/ua-private"
as mlfs_ua sh -c "echo 'echo secret 42 >> \$MLFS_METRICS' > '$MNT/runs/ua-private/command'"
as mlfs_ua chmod 700 "$MNT/runs/ua-private"
as mlfs_ua sh -c "echo submit > '$MNT/runs/ua-private/ctl'"
check "ua-private Completed" wait_final "$MNT/runs/ua-private" 30
check "its owner sees it in index.html" eval \
	'as mlfs_ua cat "$MNT/runs/index.html" | grep -q "ua-private"'
check "another user does not" eval \
	'! as mlfs_ub cat "$MNT/runs/index.html" | grep -q "ua-private"'
check "another user still sees shared runs" eval \
	'as mlfs_ub cat "$MNT/runs/index.html" | grep -q ">live<"'
expect_err "nor its metrics.svg" "Permission denied" \
	as mlfs_ub cat "$MNT/runs/ua-private/metrics.svg"

# ---- kill -9 and remount: params and pictures stay, nothing doubles -------------
P_BEFORE=$(md5sum < "$MNT/runs/py/params")
crash_ws
remount_or_bail "remount after kill -9" -o allow_other
eq "params unchanged" "$P_BEFORE" "$(md5sum < "$MNT/runs/py/params")"
check "metrics.svg still there" grep -q "(20 points)" "$MNT/runs/live/metrics.svg"
check "index.html still renders" grep -q ">live<" "$MNT/runs/index.html"

done_testing
