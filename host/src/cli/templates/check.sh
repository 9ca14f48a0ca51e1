#!/bin/sh
# check.sh: exit 0 when {{NAME}} is running, $APP_STATUS_ERR otherwise.
set -eu
if [ -f "$APP_PID" ] && kill -0 "$(cat "$APP_PID")" 2>/dev/null; then
    exit "$APP_STATUS_OK"
fi
exit "$APP_STATUS_ERR"
