#!/bin/sh
# make install works for users: headers, libraries, agentaflow.pc and the CMake package
# config land in a prefix, and a program builds against them both ways and runs.
set -eu
build_dir=$1
src_dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n 1 | xargs dirname)

# pkg-config (shared library; rpath so the test needs no ldconfig)
PKG_CONFIG_PATH="$libdir/pkgconfig" cc -std=c11 "$src_dir/consumer.c" -o "$tmp/consumer-pc" \
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs agentaflow) \
    -Wl,-rpath,"$libdir"
"$tmp/consumer-pc"

# CMake find_package
cmake -S "$src_dir" -B "$tmp/cm" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$tmp/cm" >/dev/null
"$tmp/cm/consumer"
