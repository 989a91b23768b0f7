#!/usr/bin/env bash
# Runs every Fuzz* target in the repository for a short time each.
# Usage: scripts/fuzz.sh [DURATION]   (default 10s per target)
#
# Go 1.26's fuzz coordinator has a race at the end of a duration-based
# -fuzztime (go.dev/issue/75804, fixed in Go 1.27): a worker that is still
# busy when the deadline fires makes the target fail with a bare
# "context deadline exceeded", although nothing was found and no reproducer
# was written. A real finding always writes testdata/fuzz/<Target>/<hash>.
# So a run fails here when a reproducer appears or when the output names any
# other failure; a bare deadline is retried once with a count-based
# -fuzztime (no wall-clock deadline, so the race cannot happen), and that
# retry must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10s}"
retry_count="${FUZZ_RETRY_COUNT:-20000x}"
found=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

corpus() { ls "$1" 2>/dev/null | sort || true; }

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    found=$((found + 1))
    echo "-- $pkg $target ($dur)"
    before=$(corpus "$dir/testdata/fuzz/$target")
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$dur" "$pkg" 2>&1 | tee "$log"; then
      continue
    fi
    after=$(corpus "$dir/testdata/fuzz/$target")
    if [ "$before" != "$after" ]; then
      echo "FAIL: $target wrote a reproducer under $dir/testdata/fuzz/$target" >&2
      exit 1
    fi
    # The only failure line must be the coordinator's bare deadline.
    if ! grep -q '^    context deadline exceeded$' "$log" || grep -qE 'panic:|Failing input written|fuzz_test.go:|_test.go:[0-9]+:' "$log"; then
      echo "FAIL: $target failed (see above)" >&2
      exit 1
    fi
    echo "== $target: bare 'context deadline exceeded' without a reproducer (go.dev/issue/75804); retrying with -fuzztime $retry_count"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$retry_count" "$pkg"
  done
done
echo "fuzzed $found targets"
