#!/usr/bin/env bash
# Checks the binary `make install` builds runs on a host without Swift (`make install-check`):
#   - ldd shows no Swift runtime library (libswiftCore, Foundation, libdispatch, ...) and nothing "not found";
#   - every library it needs directly comes from a package of scripts/runtime-packages.txt;
#   - it runs (`version`) with an empty environment.
#   scripts/check-install.sh BINARY
set -euo pipefail
bin=${1:?usage: check-install.sh BINARY}
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "check-install: $bin: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "not an executable file"
libs=$(ldd "$bin") || fail "ldd failed"
swift=$(grep -E 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|/swift/' <<<"$libs" || true)
[ -z "$swift" ] || fail "links the Swift runtime dynamically:"$'\n'"$swift"
missing=$(grep 'not found' <<<"$libs" || true)
[ -z "$missing" ] || fail "libraries not found:"$'\n'"$missing"
allowed=$(grep -v '^#' "$here/runtime-packages.txt" | grep -v '^$')
base="libc6 libgcc-s1 libstdc++6"   # in every Debian install (Essential / required)
for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(awk -v l="$lib" '$1 == l && $3 ~ /^\// {print $3}' <<<"$libs")
    [ -n "$path" ] || continue   # the dynamic loader itself, vdso
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
    pkg=${pkg%%:*}
    [ -n "$pkg" ] || fail "$lib ($path) belongs to no Debian package"
    # libopenblas0 is a virtual choice between its pthread/openmp/serial builds.
    case "$pkg" in libopenblas0-*) pkg=libopenblas0 ;; esac
    grep -qx "$pkg" <<<"$allowed"$'\n'"${base// /$'\n'}" || fail "$lib comes from $pkg, which scripts/runtime-packages.txt does not list"
done
version=$(env -i "$bin" version) || fail "does not run with an empty environment"
echo "check-install: $bin: no Swift runtime library linked; runtime packages: $(echo $allowed); version $version"
