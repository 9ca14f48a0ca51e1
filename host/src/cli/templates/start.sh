#!/bin/sh
# start.sh: start {{NAME}} in the background and record its pid in $APP_PID.
# Run by the Apollo host with cwd = $APP_ROOT and the environment contract
# (SERVICE_ROOT APP_ROOT APP_LOG APP_PID APP_TMP APP PORTS + the APP_*_ERR codes).
set -eu

mkdir -p "$(dirname "$APP_LOG")" "$(dirname "$APP_PID")" "$APP_ROOT" "$APP_TMP"

if [ -f "$APP_PID" ] && kill -0 "$(cat "$APP_PID")" 2>/dev/null; then
    echo "$APP is already running (pid $(cat "$APP_PID"))"
    exit "$APP_STATUS_OK"
fi

# Replace this command with your service. It must stay in the foreground of the
# background job below (do not daemonize it yourself).
nohup sh -c 'while :; do echo "$(date -u +%FT%TZ) $APP alive on ports: ${PORTS:-none}"; sleep 5; done' \
    >>"$APP_LOG" 2>&1 &
echo $! >"$APP_PID"

# Give it a moment, then confirm it is still alive.
sleep 1
if ! kill -0 "$(cat "$APP_PID")" 2>/dev/null; then
    echo "$APP exited right after starting; see $APP_LOG" >&2
    exit "$APP_START_ERR"
fi
echo "$APP started (pid $(cat "$APP_PID"))"
