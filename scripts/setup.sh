#!/usr/bin/env bash
# Install everything wagerlab needs into .venv/ and node_modules/, then compile the contracts.
# Safe to run again: each step is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
stamp=.venv/.wagerlab-installed
inputs_hash=$(cat pyproject.toml constraints.txt package.json package-lock.json | sha256sum | cut -d' ' -f1)

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs_hash" ]; then
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
    npm ci --no-audit --no-fund --silent
    echo "$inputs_hash" > "$stamp"
fi

.venv/bin/wagerlab compile --quiet

# py-solc-x (used by `ape compile`) takes the npm compiler through this wrapper; see
# "Compiling with ape" in docs/ARCHITECTURE.md.
mkdir -p build/solcx
ln -sf ../../scripts/solc-wrapper build/solcx/solc-v0.8.30
