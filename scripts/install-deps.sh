#!/bin/sh
# Install the Debian packages rankql needs to build, test and run its demo.
# Idempotent and quick when everything is present: dpkg is asked first and
# apt-get only runs for what is missing. Needs root (or sudo) only then.
set -eu

PACKAGES="build-essential pkg-config clang libclang-rt-14-dev \
  libmicrohttpd-dev libjansson-dev lemon re2c libpq-dev libedit-dev \
  libopenblas-dev zlib1g-dev libssl-dev libcmocka-dev libcurl4-openssl-dev \
  postgresql-15 valgrind tmux"

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

[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing packages:$missing (run this script as root)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Only reached when something is missing, so refreshing the lists costs
# nothing on a machine that already has everything.
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done" >&2
