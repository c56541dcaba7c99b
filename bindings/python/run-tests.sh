#!/usr/bin/env bash
# Builds the pcp_rs Python package from source into its own virtualenv and
# runs the pytest suite (loopback only; it includes mypy's stubtest, once).
# Exits non-zero on any failure. Usage: bindings/python/run-tests.sh [pytest args...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

python="${PYTHON:-python3}"
venv="${PCP_RS_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
py="$venv/bin/python"
export PATH="$venv/bin:$PATH"
"$py" -m pip install -q --upgrade "pytest>=7" "mypy>=1.8"

# The install path users take: a plain `pip install` of the source tree,
# with build isolation (pip fetches maturin from PyPI into a temporary build
# environment; maturin builds the extension with cargo, release profile).
# --force-reinstall: the version does not change between edits.
"$py" -m pip install -q --force-reinstall --no-deps "$here"

echo "== pytest"
"$py" -m pytest -p no:cacheprovider -q "$@" tests
