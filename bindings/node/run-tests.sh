#!/usr/bin/env bash
# Builds the Node package from source and runs its checks:
#   1. npm install (its install script compiles the addon with @napi-rs/cli + cargo, release mode);
#   2. tsc --strict --noEmit on examples/node/typed.ts against index.d.ts;
#   3. node --test test/*.test.js (loopback test server only).
# Exits non-zero on any failure. Honours CARGO_TARGET_DIR / CARGO_BUILD_JOBS if set.
set -euo pipefail
cd "$(dirname "$0")"

echo "== npm install (builds the addon)"
# npm install, not npm ci: with some npm 11 configurations (omit-lockfile-registry-resolved)
# npm ci rejects a lock file that records only this platform's optional packages.
npm install --no-audit --no-fund
test -f pcp-rs.node || { echo "run-tests.sh: the addon pcp-rs.node was not built" >&2; exit 1; }

echo "== tsc --strict --noEmit (examples/node/typed.ts)"
npx --no-install tsc --strict --noEmit -p tsconfig.json

echo "== node --test"
node --test test/*.test.js
