#!/usr/bin/env bash
# Installs the Debian packages ranksweep builds against (and iproute2 + nftables, which the
# multi-host network-namespace test uses), only when some are missing.
# Used by `make run` and `make test` so both work on a fresh Debian machine with only Swift present.
set -euo pipefail
packages=(libzmq3-dev libsodium-dev libopenblas-dev liblapacke-dev libpng-dev libjpeg62-turbo-dev libtiff-dev libsqlite3-dev pkg-config iproute2 nftables)
packages+=(libhdf5-dev)   # Keras .h5/.weights.h5/.keras model files (ModelInterop)
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
