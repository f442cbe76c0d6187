#!/usr/bin/env bash
# Every benchmark once, on shrunk workloads, against the nnjit installed in the
# current Python; exits non-zero if any benchmark fails.  Needs git history
# (run it from a clone) and asv (pip install asv); no network.
set -euo pipefail
cd "$(dirname "$0")"

export NNJIT_BENCH_QUICK=1
python -m asv machine --yes >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
python -m asv run --python=same --quick --show-stderr --durations=5 "$@" 2>&1 | tee "$log" \
    || status=$?
# asv exits 2 when a benchmark fails; also catch failures it reports otherwise.
if [ "$status" -ne 0 ] || grep -Eq '(^|[[:space:]])failed$|Traceback|Error:' "$log"; then
    echo "run_quick.sh: some benchmarks failed (asv exit status $status)" >&2
    exit 1
fi
echo "run_quick.sh: every benchmark ran"
