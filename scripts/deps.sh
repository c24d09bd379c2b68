#!/usr/bin/env bash
# Install everything Epoch needs to build, run, test and benchmark (Debian 12).
# Idempotent: when every package is already installed, apt is not touched at all.
# Works as root; otherwise uses sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format shellcheck
  libuv1-dev libpq-dev libssl-dev libpg-query-dev libhiredis-dev libcriterion-dev libinih-dev libjson-c-dev libxxhash-dev liburing-dev libhttp-parser-dev
  postgresql-15 postgresql-client-15 redis-server pgbouncer haproxy
  python3 python3-psycopg2 python3-psycopg openssl libpostgresql-jdbc-java openjdk-17-jdk-headless
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "deps: installing ${missing[*]}"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps: not root and sudo is not available; install as root: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
echo "deps: done"
