#!/bin/sh
# restart.sh: stop then start {{NAME}}.
set -eu
dir=$(dirname "$0")
"$dir/stop.sh" || exit "$APP_RESTART_ERR"
"$dir/start.sh" || exit "$APP_RESTART_ERR"
