#!/usr/bin/env bash
# Counts the pairs of places in the tree that share six or more same-shape
# lines, with the `duplicates` command, as docs/architecture.md ("What
# counts as written twice") decides: the tool passes import lines over, but
# reads the lines of a grouped Go `import (...)` block as code, so two files
# that import the same packages in the same order make a pair. This script
# gives the tool a copy of the tree (the files it would read here: tracked,
# and untracked but not ignored) in which each grouped import stands on a
# line of its own (`import "fmt"`, as Go also allows), so that what it pairs
# is code. Nothing in the checkout is changed. Arguments go to the tool
# (default: --most 200 --seconds 120); `scripts/duplicates.sh --most 1`
# prints the count alone.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v duplicates >/dev/null 2>&1; then
  echo "duplicates: not on PATH (the development tool library's command)" >&2
  exit 2
fi
if ! command -v perl >/dev/null 2>&1; then
  echo "perl: not on PATH" >&2
  exit 2
fi

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT

git ls-files -z --cached --others --exclude-standard |
  tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$copy"

find "$copy" -name '*.go' -print0 | xargs -0 perl -0pi -e '
  s{^import \((.*?)^\)}{
    join "\n", map { "import $_" } grep { length } map { s/^\s+|\s+$//gr } split /\n/, $1
  }gmse'

if [ "$#" -eq 0 ]; then
  set -- --most 200 --seconds 120
fi
duplicates --repo "$copy" "$@"
