#!/usr/bin/env bash
# Create .venv with the pinned stack and gluonbert installed (editable).
# Safe to re-run: it does nothing when requirements.txt, pyproject.toml and this file are unchanged.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp=.venv/.gluonbert-installed
want=$(cat requirements.txt pyproject.toml setup.sh | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  .venv/bin/python -m gluonbert.ops  # rebuilds the kernels only when their sources changed
  exit 0
fi
echo "setup: creating .venv with $("$python" --version) and the pinned stack (a few minutes)"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install -r requirements.txt
# gluonnlp 0.10.0 is published as source only, with Cython extensions: build it against the
# numpy pinned above rather than in an isolated environment that would pull a newer numpy.
pip install --no-build-isolation gluonnlp==0.10.0
# d2l 1.0.3 pins versions that clash with this stack (jupyter, requests, numpy extras);
# requirements.txt lists what its mxnet module really imports.
pip install --no-deps d2l==1.0.3
pip install --no-deps --no-build-isolation -e .
# gluonbert's CPU kernels (an MXNet extension library, compiled with g++; optional)
.venv/bin/python -m gluonbert.ops
echo "$want" > "$stamp"
echo "setup: done"
