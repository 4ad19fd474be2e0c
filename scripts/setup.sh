#!/usr/bin/env bash
# Install everything the project needs on a Debian/Ubuntu machine, idempotently:
#   - R with the png, jpeg and jsonlite packages (apt, when Rscript or a package is missing)
#   - the project venv (.venv) with the locked Python dependencies (uv sync --frozen)
#   - Azurite, Microsoft's Azure Storage emulator (npm, pinned), into .tools/azurite: the storage account of
#     the fake Azure ML workspace that the Azure engine's tests and scripts/azure-sim.sh run against
#   - with --system, what the system test needs (apt): PostgreSQL, Chromium and its driver
#   - with --compose, what the container checks need (apt): docker-compose (only to validate docker-compose.yaml;
#     no Docker engine is needed)
#   - with --r-packages SCRIPT, the R packages SCRIPT declares (an renv.lock or DESCRIPTION next to it): Debian's
#     r-cran-* where they exist, else from a CRAN-like repository (R_REPO, default cloud.r-project.org) into R's
#     first writable library (python -m azureml_parallel_r.r_install; R_LIBRARY sets another)
# Run by scripts/demo.sh and scripts/test.sh (which asks for --system and --compose only when the tests it runs
# need them); run it alone to just set up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SYSTEM=false
COMPOSE=false
R_SCRIPT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --system) SYSTEM=true ;;
    --compose) COMPOSE=true ;;
    --r-packages) [ $# -ge 2 ] || { echo "--r-packages needs the R script" >&2; exit 2; }; R_SCRIPT=$2; shift ;;
    *) echo "usage: scripts/setup.sh [--system] [--compose] [--r-packages R_SCRIPT]" >&2; exit 2 ;;
  esac
  shift
done

# as the compute image has them (include/environment/Dockerfile): R's recommended packages (Matrix, ...) and the
# toolchain that builds packages with compiled code
R_PACKAGES=(r-base-core r-recommended r-base-dev r-cran-png r-cran-jpeg r-cran-jsonlite)
AZURITE_VERSION=3.37.0
UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3.11}

say() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || { say "apt-get is not available: install $* by other means"; exit 1; }
  say "installing with apt: $*"
  as_root apt-get update -qq || { say "apt-get update failed: run as root or with sudo"; exit 1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

r_ready() {
  command -v Rscript >/dev/null 2>&1 && command -v make >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1 &&
    Rscript --vanilla -e 'for (p in c("png", "jpeg", "jsonlite", "Matrix")) if (!requireNamespace(p, quietly = TRUE)) quit(status = 1)' \
      >/dev/null 2>&1
}

if ! r_ready; then
  if command -v apt-get >/dev/null 2>&1; then
    apt_install "${R_PACKAGES[@]}"
  else
    say "R is missing and apt-get is not available on this machine."
    say "Install R (>= 4.1) with its recommended packages, a C compiler and make, and the R packages png, jpeg and"
    say "jsonlite; make sure Rscript is on PATH, and run this again."
    exit 1
  fi
  r_ready || { say "R was installed but the packages png, jpeg, jsonlite, Matrix or the compiler are still missing"; exit 1; }
fi

missing=()
if [ "$SYSTEM" = true ]; then
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
fi
if [ "$COMPOSE" = true ]; then
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

azurite_ready() {
  [ -x .tools/azurite/node_modules/.bin/azurite-blob ] &&
    [ "$(node -p 'require("./.tools/azurite/node_modules/azurite/package.json").version' 2>/dev/null)" = "$AZURITE_VERSION" ]
}
if ! azurite_ready; then
  if ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      apt_install nodejs npm
    else
      say "npm is missing and apt-get is not available: install Node.js (>= 18) and npm, then run this again"
      exit 1
    fi
  fi
  say "installing Azurite $AZURITE_VERSION (npm) into .tools/azurite"
  npm install --prefix .tools/azurite --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null
  azurite_ready || { say "Azurite was installed but .tools/azurite/node_modules/.bin/azurite-blob is missing"; exit 1; }
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  if [ "$(python3 -c 'import sys; print(sys.version_info[:2] == (3, 11))' 2>/dev/null)" = True ]; then
    PYTHON=python3
  else
    say "Python 3.11 is required (python3.11 not found; python3 is $(python3 --version 2>&1))"
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating the project venv (.venv) with $PYTHON"
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if command -v apt-get >/dev/null 2>&1; then
      as_root apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      "$PYTHON" -m venv .venv
    else
      say "cannot create a venv: install the venv module for $PYTHON"
      exit 1
    fi
  fi
fi
if [ ! -x .venv/bin/uv ] || [ "$(.venv/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  say "installing uv $UV_VERSION into .venv"
  .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip >/dev/null
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
say "syncing the locked Python dependencies (uv.lock) into .venv"
# --compile-bytecode: every process (tasks, engine workers) then starts from .pyc files, even where
# PYTHONDONTWRITEBYTECODE is set (importing airflow.sdk: ~2 s from source, a fraction of that compiled).
UV_PYTHON_DOWNLOADS=never .venv/bin/uv sync --frozen --all-extras --quiet --compile-bytecode --python .venv/bin/python
if [ -n "$R_SCRIPT" ]; then
  install_args=("$R_SCRIPT")
  [ -n "${R_REPO:-}" ] && install_args+=(--repo "$R_REPO")
  [ -n "${R_LIBRARY:-}" ] && install_args+=(--library "$R_LIBRARY")
  .venv/bin/python -m azureml_parallel_r.r_install "${install_args[@]}"
fi
