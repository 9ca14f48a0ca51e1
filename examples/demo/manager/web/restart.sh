#!/bin/sh
# restart.sh - stop.sh then start.sh, the siblings of this script.
# Exit 0 on success, $APP_RESTART_ERR when either step fails.
#
# Run by the Apollo host with cwd=$APP_ROOT and the script environment contract:
# SERVICE_ROOT APP_ROOT APP_LOG APP_PID APP_TMP APP PORTS, the APP_*_ERR status codes
# and the model's run_data.envs (see examples/demo/README.md).
set -eu

: "${APP:?}"
restart_err=${APP_RESTART_ERR:-105}
dir=$(dirname -- "$0")

if ! "$dir/stop.sh"; then
    echo "$APP: restart: stop failed" >&2
    exit "$restart_err"
fi
if ! "$dir/start.sh"; then
    echo "$APP: restart: start failed" >&2
    exit "$restart_err"
fi
