#!/usr/bin/env bash
# The tree exists, a run goes end to end, unmount is clean.
source "$(dirname "$0")/../lib.sh"

check "mount" mount_ws
check "top-level tree" test -f "$MNT/README" -a -f "$MNT/events" -a \
	-d "$MNT/targets" -a -d "$MNT/runs" -a -d "$MNT/deployments" -a -d "$MNT/models"
eq "local target is Succeeded" Succeeded "$(cat "$MNT/targets/local/status")"

R=$MNT/runs/r1
check "mkdir a run" mkdir "$R"
eq "new run is Draft" Draft "$(cat "$R/status")"
cat > "$R/train.sh" <<'SH'
echo "hello $MLFS_RUN"
echo "loss 0.5 1" >> "$MLFS_METRICS"
echo weights > "$MLFS_OUTPUTS/model.txt"
SH
wr "$R/command" 'sh train.sh'
check "submit" wr "$R/ctl" submit
check "run completes" wait_for "$R/status" Completed
eq "exit code 0" 0 "$(cat "$R/exit_code")"
eq "log holds the output" "hello r1" "$(cat "$R/log")"
eq "outputs appear" weights "$(cat "$R/outputs/model.txt")"
check "metrics line" grep -q '^loss 0.5 1 ' "$R/metrics"
check "events has the transitions" grep -q 'run r1 Completed' "$MNT/events"
check "unmount exits 0" unmount_ws
done_testing
