#!/bin/sh
# Installs the Debian packages the build and the tests need, and only those that are
# missing. Idempotent and quiet when everything is present. Works as root on a fresh
# Debian 12 (only apt-get's network is needed); elsewhere it uses sudo when it can.
set -eu

# Keep this list in the README's dependency table.
PACKAGES="
build-essential cmake ninja-build pkg-config git ca-certificates
libcmocka-dev
libcurl4-openssl-dev zlib1g-dev libssl-dev openssl
libsystemd-dev systemd dpkg-dev groff-base
libyaml-dev libjansson-dev
protobuf-c-compiler libprotobuf-c-dev
libsqlite3-dev
prometheus wrk curl wget
clang libclang-rt-dev
nodejs npm
chromium
clang-format valgrind
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# A node/npm from outside Debian (nvm, nodesource) is fine too.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo "$missing" | xargs)
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-deps: these Debian packages are missing: $missing" >&2
    echo "install-deps: run this script as root (or install them) and try again" >&2
    exit 1
fi

echo "install-deps: installing $missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
