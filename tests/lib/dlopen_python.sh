#!/bin/sh
# Runs dlopen_sdk.py with the system Python if there is one, else any python3 on PATH;
# exit 77 (SKIP) only when there is no python3 at all.
if [ -x /usr/bin/python3 ]; then
    py=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1; then
    py=$(command -v python3)
else
    echo "no python3: skipped"
    exit 77
fi
exec "$py" "$(dirname "$0")/dlopen_sdk.py" "$1"
