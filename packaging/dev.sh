#!/bin/bash
# One entry point for a fresh Debian 12 machine, as root:
#   packaging/dev.sh demo   install packages, build, run berthd and a busybox pod through CRI
#   packaging/dev.sh test   install packages, build once, run every test (unit + integration)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config git file python3
  libseccomp-dev libcap-dev nlohmann-json3-dev libcli11-dev
  libssl-dev libcurl4-openssl-dev libarchive-dev libzstd-dev zlib1g-dev libsqlite3-dev
  libtomlplusplus-dev libgtest-dev libgmock-dev procps busybox-static crun runc
  docker-registry skopeo umoci apache2-utils openssl zstd
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libnghttp2-dev
  containernetworking-plugins iproute2 iptables
  golang-go golang-github-docker-spdystream-dev golang-github-gorilla-websocket-dev)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build() {
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C build -j"$(nproc)"
}

case "${1:-}" in
  demo)
    install_packages
    build
    packaging/demo.sh build
    ;;
  test)
    install_packages
    build
    ctest --test-dir build --output-on-failure -j2
    ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
