#!/usr/bin/env bash
# Mutation testing with mutmut (pinned in constraints.txt, extra "mutation"):
#
#     .venv/bin/pip install -c constraints.txt -e ".[test,mutation]"
#     bash scripts/mutation.sh [MUTANT_NAME_PATTERN ...]
#     RETEST_SURVIVORS=1 bash scripts/mutation.sh        # after adding tests for survivors
#
# Naming mutants (patterns) makes mutmut test every one of them again; with no names it
# tests only those without a result (new, changed, or reset by RETEST_SURVIVORS).
#
# What is mutated and which tests run is set in setup.cfg's [mutmut] section. mutmut
# imports mutated modules by their file path, so the package is copied into
# .mutation/src/notmiwae/ (models/, inference/, experiments/ as the subpackages the tests
# import) and mutmut runs there; results stay in .mutation/mutants between runs, and a
# second run tests only mutants whose function changed. Not part of CI: it takes hours on
# two cores (results/mutation.md). Prints the surviving mutants and the score at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${MUTATION_DIR:-$ROOT/.mutation}
MUTMUT=${MUTMUT:-$ROOT/.venv/bin/mutmut}
mkdir -p "$WORK/src/notmiwae"
cd "$ROOT"
# cp -p keeps modification times, which mutmut uses to see what changed.
cp -p notmiwae/*.py "$WORK/src/notmiwae/"
for part in models inference experiments; do
  rm -rf "$WORK/src/notmiwae/$part"
  cp -rp "$part" "$WORK/src/notmiwae/$part"
done
# mutmut maps tests to the functions they reach once and keeps the map; tests added or
# changed since would not be run for old mutants (nor any test for new functions), so
# the map is dropped whenever the tests differ from the last run's.
digest=$(find tests -name '*.py' | sort | xargs cat | sha256sum | cut -d' ' -f1)
if [ "$(cat "$WORK/tests.sha256" 2>/dev/null)" != "$digest" ]; then
  rm -f "$WORK/mutants/mutmut-stats.json"
  echo "$digest" > "$WORK/tests.sha256"
fi
rm -rf "$WORK/tests"
cp -rp tests "$WORK/tests"
if [ "${RETEST_SURVIVORS:-0}" = 1 ] && [ -d "$WORK/mutants" ]; then
  # after adding tests for survivors: mark them untested, so this run tests them again
  "$ROOT/.venv/bin/python" - "$WORK/mutants" <<'PYTHON'
import json
import pathlib
import sys

for meta in pathlib.Path(sys.argv[1]).rglob("*.meta"):
    data = json.loads(meta.read_text())
    codes = data["exit_code_by_key"]
    # 0: survived; 33: no test reached it (the tests that reach a function may have changed)
    data["exit_code_by_key"] = {k: None if v in (0, 33) else v for k, v in codes.items()}
    meta.write_text(json.dumps(data))
PYTHON
fi
cp -p setup.cfg "$WORK/setup.cfg"
find "$WORK" -name __pycache__ -prune -exec rm -rf {} +
cd "$WORK"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per worker: they run side by side
"$MUTMUT" run --max-children "${JOBS:-2}" "$@" || true
"$MUTMUT" results --all true > results.txt 2>&1 || "$MUTMUT" results > results.txt 2>&1
"$(dirname "$MUTMUT")/python" - <<'PYTHON'
import collections
import pathlib

lines = pathlib.Path("results.txt").read_text().splitlines()
status = collections.Counter(line.rsplit(":", 1)[-1].strip() for line in lines if ":" in line)
print(dict(status))
killed = status.get("killed", 0) + status.get("timeout", 0) + status.get("segfault", 0)
total = sum(status.values())
print(f"mutation score: {killed}/{total} = {killed / max(total, 1):.1%}")
PYTHON
