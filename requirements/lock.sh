#!/bin/sh
# Compile the lock files from pyproject.toml with uv (pinned, with hashes, for every platform):
#   requirements/dev.txt    the test and CI environment: the README's test command installs it
#   requirements/image.txt  the container image's runtime set ([all]), at the same versions
# Pass uv's options through: `--upgrade` moves everything to today's releases, `--upgrade-package
# NAME` one package; with none, the current pins are kept wherever pyproject.toml still allows them.
set -eu
cd "$(dirname "$0")/.."
compile() {
  uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet "$@"
}
compile --extra dev -o requirements/dev.txt "$@"
compile --extra all -c requirements/dev.txt -o requirements/image.txt "$@"
