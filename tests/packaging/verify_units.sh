#!/bin/sh
# systemd-analyze verify on packaging/systemd/*.service. verify insists that ExecStart's
# program exists, so it runs on copies whose /usr/bin/agentaflow is the built binary; and it
# only warns (exit 0) about an unknown or misspelt key, so any output at all is a failure.
# Exit 77 (skipped) where systemd-analyze is not installed.
set -eu
bin=$1
units_dir=$2
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze not found; skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in "$units_dir"/*.service; do
    sed "s|/usr/bin/agentaflow|$bin|g" "$unit" >"$tmp/$(basename "$unit")"
done
cd "$tmp"
# --man=no: the man pages named in Documentation= are installed by the package, not here.
if ! systemd-analyze verify --man=no ./*.service >"$tmp/out" 2>&1 || [ -s "$tmp/out" ]; then
    cat "$tmp/out"
    echo "systemd-analyze verify found problems in $units_dir"
    exit 1
fi
echo "verified:" "$units_dir"/*.service
