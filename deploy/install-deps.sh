#!/bin/bash
# Installs every Debian 12 package that building, running and testing
# netvigil needs. Idempotent and non-interactive; run as root.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

PACKAGES=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libgrpc++-dev libgrpc-dev libabsl-dev
  libpqxx-dev libpq-dev libspdlog-dev libfmt-dev
  libsqlite3-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev
  libsystemd-dev libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev googletest
  clang-14 libclang-rt-14-dev
  # run: the database, the classic tools the agent supervises or is checked
  # against, and what the lab is built from
  postgresql-15 postgresql-client-15
  iperf3 mtr-tiny lsof iproute2 nftables iputils-ping procps psmisc
  util-linux kmod
  # tests: an independent gRPC client, fail2ban's regex tester, node for
  # the grpc-js reflection client
  python3 python3-grpcio python3-protobuf fail2ban
  # tests: wrong clocks (libfaketime); the rogue agent's Python stubs come
  # from the build's protoc and grpc_python_plugin
  faketime
  # the web dashboard and /metrics (an HTTP server with OpenSSL), webhooks
  # (libcurl), web passwords (libsodium's crypto_pwhash), charts served from Debian rather
  # than the internet, headless Chromium for the web tests, a strict parser
  # of the Prometheus exposition format
  libcpp-httplib-dev libsodium-dev libjs-dygraphs libjs-d3 chromium
  libcurl4-openssl-dev
  python3-prometheus-client
)
# Node.js for the grpc-js reflection client: Debian's, unless the machine
# already has one (its own npm comes with it).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps.sh: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged PostgreSQL and fail2ban on install; netvigil
# runs its own private cluster and never needs the system services.
echo "install-deps.sh: done"
