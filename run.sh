#!/usr/bin/env bash
# The main job: set up .venv if needed, then run `python -m gluonbert main` (options pass through).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec .venv/bin/python -m gluonbert main "$@"
