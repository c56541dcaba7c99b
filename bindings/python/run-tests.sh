#!/usr/bin/env bash
# Builds the pcp_rs Python package from source into its own virtualenv and
# runs mypy's stubtest and the pytest suite (loopback only). Exits non-zero on
# any failure. Usage: bindings/python/run-tests.sh [pytest args...]
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
"$py" -m pip install -q --upgrade "maturin>=1.9.4,<2" "pytest>=7" "mypy>=1.8"

# pip install builds the extension with maturin (release profile) from source.
"$py" -m pip install -q --force-reinstall --no-deps --no-build-isolation "$here"

echo "== stubtest"
(cd /tmp && "$py" -m mypy.stubtest pcp_rs)

echo "== pytest"
export PCP_RS_LISTEN_ANNOUNCE=0
"$py" -m pytest -p no:cacheprovider -q "$@" tests
