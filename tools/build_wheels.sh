#!/usr/bin/env bash
# Wheels for every CPython that the release pipeline builds ([tool.cibuildwheel] build in
# pyproject.toml) and this machine has: each built with that Python, repaired by auditwheel,
# installed in a fresh virtual environment without a compiler and smoke-tested on every
# instruction set of the CPU (tests/wheel_smoke.sh). Then the sdist (python -m build
# --sdist), installed in a fresh virtual environment (built from source there) and
# smoke-tested (tests/wheel_smoke.py). Run by .ci/run. The files land in $OUT (default
# dist/release), listed at the end with their sizes.
set -euo pipefail
OUT=$(realpath -m "${OUT:-dist/release}")
cd "$(dirname "$0")/.."
source tools/find_python.sh
PYTHON=${PYTHON:-python}
smoke=$PWD/tests/wheel_smoke.py
start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

versions=$("$PYTHON" - <<'PY'
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    selectors = tomllib.load(f)["tool"]["cibuildwheel"]["build"]
print(*(re.fullmatch(r"cp3(\d+)-\*", s).expand(r"3.\1") for s in selectors))
PY
)
built=() missing=()
for version in $versions; do
  python=$(find_python "$version")
  if [[ -z $python ]]; then
    missing+=("$version")
    continue
  fi
  echo "== Python $version ($python) [$((SECONDS - start)) s]"
  WHEELHOUSE="$OUT" PYTHON="$python" bash tests/wheel_smoke.sh
  built+=("$version")
done

echo "== sdist [$((SECONDS - start)) s]"
"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q build >"$work/tools.log" 2>&1 \
  || { cat "$work/tools.log"; exit 1; }
"$work/tools/bin/python" -m build --sdist --outdir "$OUT" . >"$work/sdist.log" 2>&1 \
  || { cat "$work/sdist.log"; exit 1; }
sdist=$(ls "$OUT"/fastmlp-*.tar.gz)
"$PYTHON" -m venv "$work/venv"
# Its dependencies as wheels; fastmlp itself is compiled from the sdist.
"$work/venv/bin/python" -m pip install -q --only-binary=:all: "$sdist" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }
(cd "$work" && "$work/venv/bin/python" "$smoke")  # away from the source tree

echo "== built in $((SECONDS - start)) s: Python ${built[*]:-none}" \
     "${missing:+(not on this machine: ${missing[*]})}"
ls -l "$OUT" | awk 'NR > 1 {printf "  %-60s %9d bytes\n", $9, $5}'
[[ ${#built[@]} -gt 0 ]] || { echo "FAIL: none of Python $versions is on this machine"; exit 1; }
