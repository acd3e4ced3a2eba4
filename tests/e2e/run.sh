#!/usr/bin/env bash
# Runs the end-to-end tests (python's unittest): real traffic through
# fulcrum-data's TUN service interfaces in network namespaces the tests make.
# Exit 77 (skipped) when not root; a clear failure when a tool is missing.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "e2e tests need root (they create network namespaces and TUN devices): skipped"
  exit 77
fi
missing=()
for tool in ip nginx wrk curl python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "e2e tests need: ${missing[*]} (scripts/setup-deps installs them)" >&2
  exit 1
fi
if [ ! -c /dev/net/tun ]; then
  echo "e2e tests need /dev/net/tun" >&2
  exit 1
fi
cd "$(dirname "$0")"
export PYTHONDONTWRITEBYTECODE=1
# Without arguments: every module (the data path, the HTTP filter, and two
# engines sharing Redis; that one skips itself without redis-server or clang).
[ $# -ne 0 ] || set -- test_e2e test_http_filter test_multi_engine
exec python3 -m unittest -v "$@"
