#!/bin/sh
# tests/packaging/deb_test.sh BUILD_DIR SOURCE_DIR: `make deb`'s package, checked as a user
# would get it: its file list, its control data, and the program run from an unpacked copy
# (`agentaflow version`, `agentaflow config check /etc/agentaflow/agentaflow.yaml`). The man
# pages must render without a groff warning where groff is installed.
# Exit 77 (skipped) without dpkg-deb.
set -eu
build=$1
src=$2
command -v dpkg-deb >/dev/null 2>&1 || { echo "dpkg-deb not found; skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

deb=$(sh "$src/scripts/build-deb.sh" "$build" "$tmp/out")
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ "$(basename "$deb")" = "agentaflow_${version}_$(dpkg --print-architecture).deb" ] ||
    fail "unexpected package name $deb"

dpkg-deb -c "$deb" | awk '{print $6}' >"$tmp/files"
for want in ./usr/bin/agentaflow ./lib/systemd/system/agentaflow.service \
    ./lib/systemd/system/agentaflow-agent.service ./etc/agentaflow/agentaflow.yaml \
    ./etc/agentaflow/agent.env ./usr/share/man/man1/agentaflow.1.gz \
    ./usr/share/man/man5/agentaflow.yaml.5.gz ./usr/include/agentaflow/trace.h; do
    grep -qx "$want" "$tmp/files" || fail "$want is not in the package"
done
# Whatever the install rules name the libraries, the development files must be there.
for pattern in '/libagentaflow[^/]*\.so$' '/libagentaflow[^/]*\.a$' '/libagentaflow[^/]*\.so\.[0-9]' \
    '/pkgconfig/agentaflow[^/]*\.pc$' '/cmake/agentaflow[^/]*/agentaflowConfig\.cmake$'; do
    grep -q "$pattern" "$tmp/files" || fail "no file matching $pattern in the package"
done

dpkg-deb -I "$deb" >"$tmp/info"
for field in "Package: agentaflow" "Version: $version" "Architecture: $(dpkg --print-architecture)"; do
    grep -q "^ $field\$" "$tmp/info" || fail "control lacks '$field'"
done
depends=$(dpkg-deb -f "$deb" Depends)
# The libraries the program and the shared libraries link (protobuf-c is only the unit
# tests' oracle since the OTLP encoder is our own, so libprotobuf-c1 is not among them).
for dep in libc6 libcurl4 libyaml-0-2 zlib1g libjansson4 libssl3 libsystemd0; do
    echo "$depends" | tr ',' '\n' | grep -q "^ *$dep\( \|$\)" || fail "Depends lacks $dep: $depends"
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/agentaflow/agentaflow.yaml ||
    fail "agentaflow.yaml is not a conffile"

root=$tmp/root
dpkg-deb -x "$deb" "$root"
LD_LIBRARY_PATH=$(find "$root" -name 'lib*.so*' -printf '%h\n' | sort -u | paste -sd: -)
export LD_LIBRARY_PATH
"$root/usr/bin/agentaflow" version | grep -qx "agentaflow $version" || fail "agentaflow version"
"$root/usr/bin/agentaflow" config check "$root/etc/agentaflow/agentaflow.yaml" >"$tmp/check" ||
    { cat "$tmp/check"; fail "the shipped agentaflow.yaml does not pass config check"; }
# Every key uncommented is still valid and changes nothing: the example is the defaults.
sed -E 's/^#( *[a-z_]+:)/\1/' "$root/etc/agentaflow/agentaflow.yaml" >"$tmp/uncommented.yaml"
"$root/usr/bin/agentaflow" config check "$tmp/uncommented.yaml" >"$tmp/check2" ||
    { cat "$tmp/check2"; fail "the example with every key uncommented is invalid"; }
[ "$(tail -n +3 "$tmp/check")" = "$(tail -n +3 "$tmp/check2")" ] ||
    fail "the example's values differ from the built-in defaults"
for unit in agentaflow.service agentaflow-agent.service; do
    cmp -s "$root/lib/systemd/system/$unit" "$src/packaging/systemd/$unit" || fail "$unit differs"
done

if command -v groff >/dev/null 2>&1; then
    for page in "$root"/usr/share/man/man*/*.gz; do
        gzip -dc "$page" | groff -man -Tutf8 -ww -z >"$tmp/groff" 2>&1 || fail "groff failed on $page"
        [ ! -s "$tmp/groff" ] || { cat "$tmp/groff"; fail "groff warnings in $page"; }
    done
else
    echo "groff not found; man pages not checked"
fi
echo "ok: $(basename "$deb") ($(wc -l <"$tmp/files") entries)"
