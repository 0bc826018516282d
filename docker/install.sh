#!/bin/sh
# The image's install step, kept as a plain script so that it runs (and is tested) without a
# container daemon: a virtual environment at PREFIX holding exactly the locked runtime set
# (requirements/image.txt: reconciler-gitops[all], hashes checked, wheels only) and reconciler
# itself, built from this checkout. Needs python3 and uv (the Dockerfile copies uv in at the
# version of requirements/dev.txt).
#   usage: sh docker/install.sh PREFIX        (PYTHON=python3.12 chooses another interpreter)
set -eu
prefix=${1:?usage: sh docker/install.sh PREFIX}
src=$(cd "$(dirname "$0")/.." && pwd)
export UV_PYTHON_DOWNLOADS=never UV_NO_CONFIG=1

uv venv --quiet --python "${PYTHON:-python3}" "$prefix"
uv pip install --quiet --python "$prefix/bin/python" --require-hashes --only-binary :all: \
  -r "$src/requirements/image.txt"
uv pip install --quiet --python "$prefix/bin/python" --no-deps "$src"
# the locked set is complete and consistent, and the command starts
uv pip check --quiet --python "$prefix/bin/python"
"$prefix/bin/reconciler" --version
