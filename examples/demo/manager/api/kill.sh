#!/bin/sh
# kill.sh - force-stop this service: SIGKILL the pid in $APP_PID.
# Exit 0 when it is gone or was not running (the pid file is removed), $APP_KILL_ERR
# when it is still there 2 s later.
#
# Run by the Apollo host with cwd=$APP_ROOT and the script environment contract:
# SERVICE_ROOT APP_ROOT APP_LOG APP_PID APP_TMP APP PORTS, the APP_*_ERR status codes
# and the model's run_data.envs (see examples/demo/README.md).
set -eu

: "${APP:?}" "${APP_PID:?}"
kill_err=${APP_KILL_ERR:-106}

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

read_pid
if [ -z "$pid" ] || ! alive "$pid"; then
    rm -f "$APP_PID"
    echo "$APP not running"
    exit 0
fi

kill -KILL "$pid" 2>/dev/null || true
i=0
while alive "$pid"; do
    if [ "$i" -ge 20 ]; then
        echo "$APP: pid $pid still alive 2 s after SIGKILL" >&2
        exit "$kill_err"
    fi
    nap
    i=$((i + 1))
done
rm -f "$APP_PID"
echo "$APP killed (pid $pid)"
