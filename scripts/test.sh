#!/usr/bin/env bash
# Install everything (R via apt, Python deps into .venv) and run the whole test suite, then ruff.
# Extra arguments go to pytest, e.g. scripts/test.sh -k engine
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
