#!/bin/sh
# The shared objects' ABI and loadability (issue 12 items 2 and 3):
#  - the dynamic symbol table defines public af_ names only: no internal af__ name, no
#    protobuf-c or generated OTLP names, nothing else (version nodes aside), and no name
#    defined by both libraries;
#  - no STATIC_TLS flag (dlopen() may refuse such a library) and no initial-exec TLS
#    relocations;
#  - libagentaflow.so needs libcurl, zlib and libyaml only, besides the C runtime;
#  - every function the public headers declare (not static inline) is exported by one of them,
#    so a header without AF_API_BEGIN cannot ship functions a shared consumer fails to link.
# usage: check_shared.sh libagentaflow.so libagentaflow-platform.so include/agentaflow
set -eu
sdk=$1
platform=$2
headers=$3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for so in "$sdk" "$platform"; do
    name=$(basename "$so")
    # Version nodes (AGENTAFLOW_0) are absolute symbols, not code or data.
    nm -D --defined-only "$so" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort >"$tmp/$name"
    bad=$(grep -vE '^af_[^_]' "$tmp/$name" || true)
    if [ -n "$bad" ]; then
        echo "$name exports non-public names:"
        echo "$bad" | head -20
        fail=1
    fi
    if grep -qE '^(af__|opentelemetry__proto__|google__rpc__|protobuf_c_)' "$tmp/$name"; then
        echo "$name exports internal or protobuf-c names"
        fail=1
    fi
    [ -s "$tmp/$name" ] || { echo "$name exports nothing"; fail=1; }
    if readelf -dW "$so" | grep -q STATIC_TLS; then
        echo "$name has the STATIC_TLS flag"
        fail=1
    fi
    if readelf -rW "$so" | grep -qE 'R_X86_64_(TPOFF|GOTTPOFF)|R_AARCH64_TLS_TPREL'; then
        echo "$name has initial-exec TLS relocations"
        fail=1
    fi
done

both=$(comm -12 "$tmp/$(basename "$sdk")" "$tmp/$(basename "$platform")")
if [ -n "$both" ]; then
    echo "defined by both libraries:"
    echo "$both" | head -20
    fail=1
fi

# One declaration per line is the house style: `type af_name(...` or `type *af_name(...`.
grep -hE '^[a-zA-Z_][a-zA-Z0-9_ ]*[ *]af_[a-z0-9_]+\(' "$headers"/*.h | grep -vE '^(static|typedef)' |
    sed -E 's/.*[ *](af_[a-z0-9_]+)\(.*/\1/' | sort -u >"$tmp/declared"
[ -s "$tmp/declared" ] || { echo "no declarations found in $headers"; fail=1; }
sort -u "$tmp/$(basename "$sdk")" "$tmp/$(basename "$platform")" >"$tmp/exported"
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "declared in $headers but exported by neither library:"
    echo "$missing" | head -20
    fail=1
fi

needed=$(readelf -dW "$sdk" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
    case $lib in
    libcurl.so.* | libz.so.* | libyaml-0.so.* | libc.so.* | libm.so.* | libpthread.so.* | \
        libdl.so.* | ld-linux* | libasan.so.* | libubsan.so.* | libtsan.so.*) ;;
    *)
        echo "$(basename "$sdk") needs $lib"
        fail=1
        ;;
    esac
done
[ $fail -eq 0 ] && echo ok
exit $fail
