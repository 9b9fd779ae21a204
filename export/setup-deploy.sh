#!/usr/bin/env bash
# Create export/.venv-deploy from PyPI with export/requirements-deploy.txt: current onnx and
# onnxruntime, no MXNet. Safe to re-run: does nothing when the requirements are unchanged.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp=.venv-deploy/.requirements-installed
want=$(cat requirements-deploy.txt setup-deploy.sh | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup-deploy: creating export/.venv-deploy with $("$python" --version) (a download of ~40 MB)"
[ -x .venv-deploy/bin/python ] || "$python" -m venv .venv-deploy
.venv-deploy/bin/python -m pip --disable-pip-version-check -q install -r requirements-deploy.txt
echo "$want" > "$stamp"
echo "setup-deploy: done; run export/.venv-deploy/bin/python export/optimize.py FOLDER"
