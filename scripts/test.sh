#!/usr/bin/env bash
# Install what the selected tests need, run ruff and mypy, then the tests, in parallel where they are independent
# (pytest-xdist; PYTEST_WORKERS sets the worker count, default: the machine's cores + 1, since most tests wait on R,
# Azurite or Airflow rather than compute). One worker runs each test module, in order (--dist loadfile), so a module's
# fixtures (an Airflow stack, a wheel, an R library) are built once. Extra arguments go to pytest, e.g.
#   scripts/test.sh                       everything, the system test on the real Airflow services included
#   scripts/test.sh --fast                the unit tier: no services, no installs, no R sessions, no system test
#   scripts/test.sh -m "not system"       without the system test: no PostgreSQL or Chromium is installed
#   scripts/test.sh -k engine             any pytest selection
#   scripts/test.sh --plan [ARGS]         only say what ARGS' selection needs installed, and stop
# R, the project venv and Azurite are always set up; PostgreSQL and Chromium (apt) only when the selection holds a
# system test, docker-compose (apt) only when it holds the container checks: pytest itself says what it selects.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PLAN=false
WORKERS=${PYTEST_WORKERS:-$(($(nproc) + 1))}
if [ "${1:-}" = --plan ]; then PLAN=true; shift; fi
if [ "${1:-}" = --fast ]; then
  shift
  [ -x .venv/bin/pytest ] || scripts/setup.sh  # the venv, once; the unit tier needs nothing else
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  .venv/bin/mypy
  # CPU-bound unit tests: one worker per core (PYTEST_WORKERS still sets it)
  exec .venv/bin/pytest -n "${PYTEST_WORKERS:-$(nproc)}" --dist loadfile -m "not integration and not system and not slow" "$@"
fi
scripts/setup.sh
set +e
selected=$(.venv/bin/pytest --collect-only -q -p no:cacheprovider "$@" 2>&1)
collected=$?
set -e
extras=()
if [ "$collected" -ne 0 ] && [ "$collected" -ne 5 ]; then  # 5: nothing selected; other failures: install it all
  extras=(--system --compose)
else
  # tests/system/azure_ml runs on a real Azure ML workspace (or is skipped): it needs no local Airflow services
  grep '^tests/system/' <<<"$selected" | grep -qv '^tests/system/azure_ml/' && extras+=(--system)
  grep -q '^tests/test_containers.py' <<<"$selected" && extras+=(--compose)
fi
echo "[test] the selected tests need: base${extras[*]:+ ${extras[*]}}" >&2
if [ "$PLAN" = true ]; then exit 0; fi
if [ ${#extras[@]} -gt 0 ]; then scripts/setup.sh "${extras[@]}"; fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest -n "$WORKERS" --dist loadfile "$@"
