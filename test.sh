#!/usr/bin/env bash
# The test suite: set up .venv if needed, then run pytest (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec .venv/bin/python -m pytest -q "$@"
