#!/bin/sh
# Set-up entry point for a fresh Debian 12 (as root): installs what the purpose needs, then runs make.
#   ./run.sh test    build and run the whole test suite (installs the whole test stack)
#   ./run.sh demo    build, install into a temp plugin dir, run the demo (build + demo tools only)
#   ./run.sh bench   the benchmark against the reference plugins
set -eu
cd "$(dirname "$0")"
target=${1:-test}
case $target in
demo | bench) ./scripts/deps.sh "$target" ;;
all | install | dist | deb) ./scripts/deps.sh build ;;
*) ./scripts/deps.sh test ;;
esac
exec make "${@:-test}"
