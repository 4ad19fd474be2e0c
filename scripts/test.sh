#!/usr/bin/env bash
# Install everything (R, PostgreSQL, Chromium, docker-compose via apt; Python deps into .venv), run ruff,
# then the whole test suite, the system test on the real Airflow services included.
# Extra arguments go to pytest, e.g. scripts/test.sh -k engine
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh --system
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
