#!/usr/bin/env bash
# Installs every Debian 12 package athomic needs to build, test and benchmark. Idempotent: does
# nothing (and needs no network) when everything is already installed.
set -euo pipefail

packages=(
  build-essential dpkg-dev cmake ninja-build ccache pkg-config git
  libboost-dev libboost-filesystem-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libyaml-cpp-dev libcli11-dev
  libhiredis-dev libnats-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libconcurrentqueue-dev libatomic-queue-dev
  redis-server redis-tools nats-server
  python3-redis iproute2 curl prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
