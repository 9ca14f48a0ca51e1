#!/bin/sh
# start.sh - start demo-http on the first port in $PORTS (with --upstream
# "$DEMO_UPSTREAM" when set); exit 0 once it listens. The logic is in ../.shared/demo.sh.
set -eu
dir=$(dirname -- "$0")
. "$dir/../.shared/demo.sh"
demo_start_http
