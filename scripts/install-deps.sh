#!/bin/sh
# Install the Debian packages rankql needs to build, test and run its demo.
# Idempotent and quick when everything is present: dpkg is asked first and
# apt-get only runs for what is missing. Needs root (or sudo) only then.
set -eu

PACKAGES="build-essential pkg-config clang libclang-rt-14-dev \
  libmicrohttpd-dev libjansson-dev lemon re2c libpq-dev libedit-dev \
  libopenblas-dev zlib1g-dev libssl-dev libcmocka-dev libcurl4-openssl-dev \
  postgresql-15 valgrind tmux wrk jq python3 \
  dataset-fashion-mnist libpng-dev libjpeg62-turbo-dev"

# Optional, for the benchmarks only (bench_proxy_nn compares against faiss when
# `python3 -c 'import faiss'` works; ~20 s with numpy): installed best-effort along with
# missing required packages (a fresh machine), or on request with --bench. Never fails the
# build.
OPTIONAL_PACKAGES="python3-faiss"

if [ "${1:-}" = "--list" ]; then
  echo $PACKAGES
  exit 0
fi

missing=""
for p in $PACKAGES; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done

optional=""
if [ -n "$missing" ] || [ "${1:-}" = "--bench" ]; then
  for p in $OPTIONAL_PACKAGES; do
    case "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" in
      *"install ok installed"*) ;;
      *) optional="$optional $p" ;;
    esac
  done
fi

[ -z "$missing" ] && [ -z "$optional" ] && exit 0

echo "install-deps: installing:$missing$optional" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    if [ -z "$missing" ]; then
      echo "install-deps: optional packages:$optional not installed (run as root)" >&2
      exit 0
    fi
    echo "install-deps: missing packages:$missing (run this script as root)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Only reached when something is missing, so refreshing the lists costs
# nothing on a machine that already has everything.
$SUDO apt-get update -qq || [ -z "$missing" ]
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ -n "$optional" ]; then
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $optional >/dev/null 2>&1 ||
    echo "install-deps: optional$optional not installed (only the benchmarks use it)" >&2
fi
echo "install-deps: done" >&2
