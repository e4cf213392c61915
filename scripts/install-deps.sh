#!/usr/bin/env bash
# Installs the Debian packages ranksweep builds against, only when some are missing.
#   scripts/install-deps.sh          build packages (`make build`, `make run`, `make install`)
#   scripts/install-deps.sh --test   build packages plus the test-only ones (`make test`): iproute2
#                                    and nftables, which the multi-host network-namespace test uses,
#                                    and chromium, the real headless browser the dashboard test drives
# So both work on a fresh Debian machine with only Swift present. Worker hosts need neither: they
# run the `make install` binary with the runtime packages of scripts/runtime-packages.txt.
set -euo pipefail
packages=(libzmq3-dev libsodium-dev libopenblas-dev liblapacke-dev libpng-dev libjpeg62-turbo-dev libtiff-dev libsqlite3-dev pkg-config)
packages+=(libhdf5-dev)   # Keras .h5/.weights.h5/.keras model files (ModelInterop)
case "${1:-}" in
    --test) packages+=(iproute2 nftables chromium) ;;
    "") ;;
    *) echo "install-deps.sh: unknown argument '$1' (give --test or nothing)" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
