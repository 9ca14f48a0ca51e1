#!/bin/sh
# stop.sh: stop {{NAME}} gracefully (SIGTERM, then wait up to 10 s).
set -eu

if [ ! -f "$APP_PID" ]; then
    echo "$APP is not running (no pid file)"
    exit "$APP_STATUS_OK"
fi
pid=$(cat "$APP_PID")
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -gt 100 ]; then
            echo "$APP (pid $pid) did not stop within 10 s" >&2
            exit "$APP_STOP_ERR"
        fi
        sleep 0.1
    done
fi
rm -f "$APP_PID"
echo "$APP stopped"
