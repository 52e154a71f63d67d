# Sourced by tests/floor_env.sh and tools/build_wheels.sh.
# find_python X.Y: the path of an interpreter of Python X.Y on this machine (pythonX.Y on
# PATH, else pyenv's), or nothing. A pyenv shim of a version that is not selected fails
# the version test, and so does anything else that is not X.Y.
find_python() {
  local candidate
  for candidate in "python$1" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c \
        "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$1'.split('.'))))" \
        2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
}
