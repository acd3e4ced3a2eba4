#!/usr/bin/env bash
# Runs one integration test module with python's unittest; exit 77 (skipped)
# when not root, since the tests create network namespaces.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "integration tests need root (they create network namespaces): skipped"
  exit 77
fi
cd "$(dirname "$0")"
exec python3 -m unittest -v "$@"
