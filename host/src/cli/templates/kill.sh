#!/bin/sh
# kill.sh: force-kill {{NAME}} (SIGKILL), for when stop.sh is not enough.
set -eu
if [ -f "$APP_PID" ]; then
    pid=$(cat "$APP_PID")
    if kill -0 "$pid" 2>/dev/null && ! kill -KILL "$pid"; then
        exit "$APP_KILL_ERR"
    fi
    rm -f "$APP_PID"
fi
echo "$APP killed"
