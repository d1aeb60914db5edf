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
    # 0: survived; 5, 33: no test reached it (the tests that reach a function may have
    # changed)
    data["exit_code_by_key"] = {k: None if v in (0, 5, 33) else v for k, v in codes.items()}
    meta.write_text(json.dumps(data))
PYTHON
fi
cp -p setup.cfg "$WORK/setup.cfg"
find "$WORK" -name __pycache__ -prune -exec rm -rf {} +
cd "$WORK"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per worker: they run side by side
"$MUTMUT" run --max-children "${JOBS:-2}" "$@" || true
"$MUTMUT" results --all true > results.txt
"$(dirname "$MUTMUT")/python" - <<'PYTHON'
# The score per file, as a markdown table: a mutant counts as killed when a test failed
# (or timed out, or crashed); "not checked" ones are those not yet tested.
import collections
import pathlib
import re

KILLED = {"killed", "timeout", "segfault"}
counts = collections.defaultdict(collections.Counter)
for line in pathlib.Path("results.txt").read_text().splitlines():
    if ":" not in line:
        continue
    name, status = (part.strip() for part in line.rsplit(":", 1))
    module = re.sub(r"\.x[_ǁ].*$", "", name).removeprefix("notmiwae.")
    counts[module.replace(".", "/") + ".py"][status] += 1
print("| file | mutants | killed | surviving | no test reached | other | not checked | score |")
print("|---|---|---|---|---|---|---|---|")
total = collections.Counter()
for path, c in sorted(counts.items()):
    total.update(c)
    tested = sum(c.values()) - c["not checked"]
    killed = sum(c[k] for k in KILLED)
    other = tested - killed - c["survived"] - c["no tests"]  # skipped, type check, ...
    print(f"| {path} | {sum(c.values())} | {killed} | {c['survived']} | {c['no tests']} | "
          f"{other} | {c['not checked']} | {killed / max(tested, 1):.1%} |")
killed = sum(total[k] for k in KILLED)
tested = sum(total.values()) - total["not checked"]
print(f"mutation score over the tested mutants: {killed}/{tested} = {killed / max(tested, 1):.1%}")
PYTHON
