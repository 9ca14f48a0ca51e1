#!/bin/sh
# stop.sh - stop this service: SIGTERM, up to 5 s, then $APP_STOP_ERR. The logic is in ../.shared/demo.sh.
set -eu
dir=$(dirname -- "$0")
. "$dir/../.shared/demo.sh"
demo_stop
