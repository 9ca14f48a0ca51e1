#!/bin/sh
# start.sh - start this demo-http service (web, worker and api share this script).
# Listens on the first port in $PORTS; passes --upstream "$DEMO_UPSTREAM" when that is
# set (worker). Exit 0 once the service logged that it listens (and, if curl exists,
# /healthz answers) or when it is already running; $APP_START_ERR otherwise.
#
# Run by the Apollo host with cwd=$APP_ROOT and the script environment contract:
# SERVICE_ROOT APP_ROOT APP_LOG APP_PID APP_TMP APP PORTS, the APP_*_ERR status codes
# and the model's run_data.envs (see examples/demo/README.md).
set -eu

: "${APP:?}" "${APP_ROOT:?}" "${APP_LOG:?}" "${APP_PID:?}" "${APP_TMP:?}"
start_err=${APP_START_ERR:-102}
bin=${DEMO_HTTP_BIN:-demo-http}

# The pid recorded in $APP_PID if it is a plain positive number, else empty. Anything
# else is refused: `kill 0` or `kill -1` would signal a whole group or every process.
read_pid() {
    pid=$(head -n 1 "$APP_PID" 2>/dev/null || true)
    case "$pid" in
        '' | *[!0-9]* | 0*) pid= ;;
    esac
}

# True when process $1 exists and is not a zombie waiting for its parent to reap it.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true)
    [ "$state" != Z ]
}

# Fractional sleeps are a GNU/busybox extension; fall back to whole seconds.
nap() {
    sleep 0.1 2>/dev/null || sleep 1
}

# Our process bound the port (its "listening" line is in the part of the log written
# since this start) and, when curl is available, /healthz answers 200.
ready() {
    tail -c "+$((offset + 1))" "$APP_LOG" | grep -q "listening on 127.0.0.1:$port\$" || return 1
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null || return 1
    fi
}

port=$(printf '%s\n' "${PORTS:-}" | awk '{ print $1 }')
case "$port" in
    '' | *[!0-9]*)
        echo "$APP: PORTS names no port (PORTS='${PORTS:-}')" >&2
        exit "$start_err"
        ;;
esac

mkdir -p "$APP_ROOT" "$APP_TMP" "$(dirname "$APP_LOG")" "$(dirname "$APP_PID")"
read_pid
if [ -n "$pid" ] && alive "$pid"; then
    echo "$APP already running (pid $pid)"
    exit 0
fi
rm -f "$APP_PID"

if ! command -v "$bin" >/dev/null 2>&1; then
    echo "$APP: demo-http binary not found: '$bin' (put it on PATH or set DEMO_HTTP_BIN)" >&2
    exit "$start_err"
fi

set -- --port "$port" --name "$APP"
if [ -n "${DEMO_UPSTREAM:-}" ]; then
    set -- "$@" --upstream "$DEMO_UPSTREAM"
fi

touch "$APP_LOG"
echo "$(date '+%Y-%m-%dT%H:%M:%S%z') start.sh: $bin $*" >>"$APP_LOG"
offset=$(wc -c <"$APP_LOG")
nohup "$bin" "$@" >>"$APP_LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$APP_PID"

i=0
while [ "$i" -lt 30 ] && alive "$pid"; do
    if ready; then
        echo "$APP started (pid $pid, http://127.0.0.1:$port/)"
        exit 0
    fi
    nap
    i=$((i + 1))
done

if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    echo "$APP: not ready within 3 s, stopped pid $pid; last lines of $APP_LOG:" >&2
else
    echo "$APP: pid $pid exited during start; last lines of $APP_LOG:" >&2
fi
rm -f "$APP_PID"
tail -n 5 "$APP_LOG" >&2 || true
exit "$start_err"
