#!/bin/sh
# make install works for users: headers, both libraries, their pkg-config files and CMake
# package configs land in a prefix, and a program per library builds against them with
# pkg-config and with find_package, linked shared and static, and runs.
set -eu
build_dir=$1
src_dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n 1 | xargs dirname)
export PKG_CONFIG_PATH="$libdir/pkgconfig"

for pair in consumer:agentaflow platform_consumer:agentaflow-platform; do
    prog=${pair%%:*}
    pkg=${pair#*:}
    # Shared (rpath so the test needs no ldconfig) ...
    cc -std=c11 "$src_dir/$prog.c" -o "$tmp/$prog-pc" $(pkg-config --cflags --libs "$pkg") \
        -Wl,-rpath,"$libdir"
    "$tmp/$prog-pc"
    # ... and static: our archives, with the third-party libraries they require shared
    # (pkg-config --static would also ask for libcurl's private libraries, whose -dev
    # packages a Debian system need not have).
    deps="$(pkg-config --print-requires-private "$pkg" agentaflow | tr '\n' ' ')"
    cc -std=c11 "$src_dir/$prog.c" -o "$tmp/$prog-pc-static" $(pkg-config --cflags "$pkg") \
        $(pkg-config --libs-only-L "$pkg") -Wl,-Bstatic $(pkg-config --libs-only-l "$pkg") \
        -Wl,-Bdynamic \
        $(pkg-config --libs $deps) -lpthread -lm -ldl
    "$tmp/$prog-pc-static"
    # The shared program really uses the shared library (and the static one does not).
    ldd "$tmp/$prog-pc" | grep -q "lib$pkg.so"
    if ldd "$tmp/$prog-pc-static" | grep -q libagentaflow; then
        echo "$prog-pc-static links libagentaflow dynamically" >&2
        exit 1
    fi
done

# CMake find_package, both link kinds
for link in shared static; do
    cmake -S "$src_dir" -B "$tmp/cm-$link" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
        -DAF_LINK=$link -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
    cmake --build "$tmp/cm-$link" >/dev/null
    "$tmp/cm-$link/consumer"
    "$tmp/cm-$link/platform_consumer"
done
