#!/usr/bin/env bash
# The oldest versions fastmlp declares, proven (run by .ci/run, not by pytest): in a fresh
# virtual environment of the oldest Python that pyproject.toml allows, the oldest numpy,
# scipy, scikit-learn and threadpoolctl it allows are installed as binary wheels (the
# test extras resolved against them), fastmlp is built from this tree, and the default
# test suite runs. Also: pip on the Python just below the floor refuses to install fastmlp.
#
# The floors are read from pyproject.toml (`requires-python = ">=X.Y"`, `name>=version`
# in `dependencies`): raising one there raises it here. Without an interpreter of the
# oldest Python (python3.10 on PATH, or pyenv's), the check cannot run: it says so and
# skips, exiting 0, unless FLOOR_REQUIRED=1.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
DRIVER=${PYTHON:-python}
source tools/find_python.sh

# "3.10 numpy==1.22 scipy==1.8 ..." ("==1.22" takes 1.22.0, the oldest release allowed)
floors=$("$DRIVER" - <<'EOF'
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
python = re.fullmatch(r">=\s*(\d+\.\d+)", project["requires-python"])
if not python:
    sys.exit(f"floor_env.sh: no '>=X.Y' in requires-python = {project['requires-python']!r}")
pins = []
for requirement in project["dependencies"]:
    floor = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", requirement)
    if not floor:
        sys.exit(f"floor_env.sh: no 'name>=version' floor in {requirement!r}")
    pins.append("==".join(floor.groups()))
print(python.group(1), *pins)
EOF
)
read -r floor_python pins <<<"$floors"

python=$(find_python "$floor_python")
if [[ -z $python ]]; then
  echo "FLOOR NOT PROVEN: no Python $floor_python here (looked for python$floor_python on PATH" \
       "and in pyenv); the floor environment ($pins) is skipped"
  [[ ${FLOOR_REQUIRED:-0} == 1 ]] && exit 1
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tr ' ' '\n' <<<"$pins" >"$work/floors.txt"
echo "[$((SECONDS - start)) s] Python $floor_python ($python) with $pins"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
# --only-binary: every dependency a wheel from the registry (fastmlp itself is built from
# this tree); -c: the floors pinned, the test extras resolved against them.
"$venv_python" -m pip install -q --only-binary=:all: -c "$work/floors.txt" ".[test]" \
  >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }

"$venv_python" - $pins <<'EOF'
import sys
from importlib.metadata import version

import fastmlp
from packaging.version import Version

assert fastmlp.__file__.startswith(sys.prefix), f"imported {fastmlp.__file__}, not the venv's"
for pin in sys.argv[1:]:
    name, floor = pin.split("==")
    assert Version(version(name)) == Version(floor), f"{name} {version(name)}, not {floor}"
print("installed:", ", ".join(f"{p.split('==')[0]} {version(p.split('==')[0])}"
                              for p in sys.argv[1:]), f"(Python {sys.version.split()[0]})")
EOF

echo "[$((SECONDS - start)) s] the default test suite on the floor"
"$venv_python" -m pytest -q -p no:cacheprovider

# The Python just below the floor is refused by pip, with requires-python's message.
below="${floor_python%.*}.$(( ${floor_python#*.} - 1 ))"
old_python=$(find_python "$below")
if [[ -n $old_python ]]; then
  echo "[$((SECONDS - start)) s] pip on Python $below refuses fastmlp"
  if "$old_python" -m pip install --dry-run --no-deps . >"$work/old.log" 2>&1; then
    cat "$work/old.log"; echo "FAIL: pip on Python $below would install fastmlp"; exit 1
  fi
  grep -E "requires a different Python: $below\.[0-9]+ not in '>=$floor_python'" \
    "$work/old.log" || { cat "$work/old.log"; exit 1; }
else
  echo "note: no Python $below here; pip's refusal below the floor is not checked"
fi
echo "floor environment passed in $((SECONDS - start)) s"
