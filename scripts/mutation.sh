#!/usr/bin/env bash
# Mutation testing with mutmut (pinned in constraints.txt, extra "mutation"):
#
#     .venv/bin/pip install -c constraints.txt -e ".[test,mutation]"
#     bash scripts/mutation.sh [MUTANT_NAME_PATTERN ...]
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
rm -rf "$WORK/tests"
cp -rp tests "$WORK/tests"
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
