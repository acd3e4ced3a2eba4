#!/usr/bin/env bash
# ctest entry: replays every committed capture with every algorithm and checks
# the results against the facts measured from the captures (expected.json).
set -euo pipefail
exec python3 "$(dirname "$0")/replay_tests.py" "$@"
