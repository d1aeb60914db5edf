#!/usr/bin/env bash
# Plant each known bug in turn, run the tests that must catch it, and restore the file.
#
#     bash scripts/planted_bugs.sh            # from the repository root, with .venv set up
#
# Every bug must make at least one test fail whose name says what it catches; the
# output lists the failing tests per bug. The planted file is copied aside first and
# copied back afterwards (also on Ctrl-C), so uncommitted edits are kept.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TESTS=(tests/test_known_answers.py tests/test_parts.py)
status=0

plant() {  # name file from to
  local name=$1 file=$2 from=$3 to=$4 backup
  backup=$(mktemp)
  cp "$file" "$backup"
  trap 'cp "$backup" "$file"; exit 130' INT TERM
  if ! "$PY" - "$file" "$from" "$to" <<'PYTHON'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{path}: the line to change is not there exactly once: {old!r}")
open(path, "w").write(text.replace(old, new))
PYTHON
  then
    status=1
    return
  fi
  echo "=== $name ($file)"
  out=$("$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}" 2>&1)
  echo "$out" | grep -E "^FAILED" | sed 's/ - .*//'
  echo "$out" | tail -n 1
  if ! echo "$out" | grep -q "^FAILED"; then
    echo "NOT CAUGHT: $name"
    status=1
  fi
  cp "$backup" "$file"
  rm -f "$backup"
  trap - INT TERM
}

plant "imputer returns the standardised scale (rescaling dropped)" inference/imputer.py \
  "imputed = filled.detach().cpu().double().numpy() * self.scale_ + self.mean_" \
  "imputed = filled.detach().cpu().double().numpy()"
plant "multiple imputation draws decoder means instead of draws" inference/imputation.py \
  'VALUES["sample"]):
        log_chunk' \
  'VALUES["mean"]):
        log_chunk'
plant "row i's imputation drawn from another row's posterior" inference/imputation.py \
  "candidates = sample[within.T, rows]" \
  "candidates = sample[within.T, rows.roll(1)]"
plant "self-masking-known slope with its sign flipped" models/missingness.py \
  "return F.softplus(weight)" \
  "return -F.softplus(weight)"
exit $status
