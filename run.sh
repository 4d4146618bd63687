#!/bin/sh
# Set-up entry point for a fresh Debian 12 (as root): installs what is missing, then runs make.
#   ./run.sh test    build and run the whole test suite
#   ./run.sh demo    build, install into a temp plugin dir, run the demo
#   ./run.sh bench   the benchmark against the reference plugins
set -eu
cd "$(dirname "$0")"
./scripts/deps.sh
exec make "${@:-test}"
