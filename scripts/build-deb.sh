#!/bin/sh
# scripts/build-deb.sh BUILD_DIR [OUT_DIR]: agentaflow_<version>_<arch>.deb from a staging
# `DESTDIR=... cmake --install` of BUILD_DIR, so the package holds exactly what the install
# rules install (program, libraries, headers, pkg-config and CMake package files), plus the
# systemd units, /etc/agentaflow (conffiles) and the man pages. `make deb` runs it.
# dpkg-deb --root-owner-group makes every file root's without fakeroot.
set -eu
umask 022
build=$(cd "$1" && pwd)
out=$(mkdir -p "${2:-$1}" && cd "${2:-$1}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
pkg=$src/packaging

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "build-deb: no project version in $build/CMakeCache.txt" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps takes libraries under debian/<package>/ for the package's own.
root=$work/debian/agentaflow
mkdir -p "$root"
DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null

# As dh_strip does (without a -dbgsym package): RelWithDebInfo carries debug info.
find "$root" -type f -name '*.so*' -exec strip --strip-unneeded --remove-section=.comment {} +
find "$root" -type f -name '*.a' -exec strip --strip-debug {} +
strip --strip-unneeded --remove-section=.comment "$root/usr/bin/agentaflow"

# The staged program renders the configuration files, so they match the key table it has.
libpath=$(find "$root" -name 'lib*.so*' -printf '%h\n' | sort -u | paste -sd: -)
agentaflow() { LD_LIBRARY_PATH=$libpath "$root/usr/bin/agentaflow" "$@"; }
install -d "$root/etc/agentaflow" "$root/lib/systemd/system" \
    "$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/DEBIAN"
agentaflow config docs --format yaml >"$root/etc/agentaflow/agentaflow.yaml"
install -m 0644 "$pkg/systemd/agent.env" "$root/etc/agentaflow/agent.env"
install -m 0644 "$pkg/systemd/agentaflow.service" "$pkg/systemd/agentaflow-agent.service" \
    "$root/lib/systemd/system/"
gzip -9n <"$pkg/man/agentaflow.1" >"$root/usr/share/man/man1/agentaflow.1.gz"
agentaflow config docs --format man | gzip -9n >"$root/usr/share/man/man5/agentaflow.yaml.5.gz"
chmod 0644 "$root"/usr/share/man/man*/*.gz "$root/etc/agentaflow/agentaflow.yaml"

# Depends from the ELF files' needs, by dpkg-shlibdeps (dpkg-dev, from install-deps.sh),
# which wants a debian/control to run in.
elves=$(find "$root" -type f \( -name '*.so*' -o -path '*/usr/bin/*' \) | sort)
printf 'Source: agentaflow\n\nPackage: agentaflow\nArchitecture: any\n' >"$work/debian/control"
# shellcheck disable=SC2086
depends=$(cd "$work" && dpkg-shlibdeps -O $elves | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/$depends/" "$pkg/debian/control.in" >"$root/DEBIAN/control"
printf '/etc/agentaflow/agentaflow.yaml\n/etc/agentaflow/agent.env\n' >"$root/DEBIAN/conffiles"
# The shared library is new to the dynamic linker's cache (what dh_makeshlibs adds).
echo "activate-noawait ldconfig" >"$root/DEBIAN/triggers"
install -m 0755 "$pkg/debian/postinst" "$pkg/debian/prerm" "$pkg/debian/postrm" "$root/DEBIAN/"

deb=$out/agentaflow_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
