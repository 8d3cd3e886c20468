#!/bin/sh
# Regenerate docker/requirements.lock: the hub's runtime dependencies (pyproject.toml
# [project] dependencies, no test or dev extras), pinned with their sha256 hashes and
# resolved for the image: CPython 3.11 on Linux x86_64 (manylinux_2_28), wheels only, so
# the image's builder stage needs no compiler.
#
#   sh docker/lock.sh              # keep the pinned versions that still fit
#   sh docker/lock.sh --upgrade    # move every dependency to its newest allowed version
#
# uv is installed into a throwaway virtualenv under /tmp, never into the project's .venv.
set -eu
UV_VERSION=0.13.8
repo=$(cd "$(dirname "$0")/.." && pwd)
tool=/tmp/lgsp-hub-uv-$UV_VERSION
if [ ! -x "$tool/bin/uv" ]; then
  python3 -m venv "$tool"
  "$tool/bin/pip" install --quiet "uv==$UV_VERSION"
fi
cd "$repo"
"$tool/bin/uv" pip compile pyproject.toml \
  --generate-hashes \
  --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 \
  --only-binary :all: \
  --custom-compile-command "sh docker/lock.sh" \
  --output-file docker/requirements.lock \
  "$@"
