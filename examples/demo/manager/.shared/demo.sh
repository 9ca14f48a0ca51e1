# demo.sh - shared functions of the demo's manage scripts; sourced, never run.
# Each service's start/stop/restart/kill/check.sh is a few lines calling one of the
# demo_* functions below, so the logic exists once.
#
# The scripts are run by the Apollo host with cwd=$APP_ROOT and the script environment
# contract: SERVICE_ROOT APP_ROOT APP_LOG APP_PID APP_TMP APP PORTS, the APP_*_ERR status
# codes and the model's run_data.envs (see examples/demo/README.md). This folder's name
# starts with '.', which no service name may, so it never collides with a service.

: "${APP:?}" "${APP_PID:?}"

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

# Exits 0 when the service already runs; otherwise prepares its directories.
exit_if_running() {
    : "${APP_ROOT:?}" "${APP_LOG:?}" "${APP_TMP:?}"
    mkdir -p "$APP_ROOT" "$APP_TMP" "$(dirname "$APP_LOG")" "$(dirname "$APP_PID")"
    read_pid
    if [ -n "$pid" ] && alive "$pid"; then
        echo "$APP already running (pid $pid)"
        exit 0
    fi
    rm -f "$APP_PID"
}

# launch DESCRIPTION READY_FN CMD...: runs CMD in the background with its output
# appended to $APP_LOG, records its pid, and waits up to 3 s for READY_FN (which sees
# $offset, the log size before this start, so an older process's lines never count).
launch() {
    what=$1 ready_fn=$2
    shift 2
    touch "$APP_LOG"
    echo "$(date '+%Y-%m-%dT%H:%M:%S%z') start.sh: $*" >>"$APP_LOG"
    offset=$(wc -c <"$APP_LOG")
    nohup "$@" >>"$APP_LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$APP_PID"
    i=0
    while [ "$i" -lt 30 ] && alive "$pid"; do
        if "$ready_fn"; then
            echo "$APP started (pid $pid$what)"
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
    exit "${APP_START_ERR:-102}"
}

# Our demo-http bound the port (its "listening" line is in the log since this start)
# and, when curl is available, /healthz answers 200.
http_ready() {
    tail -c "+$((offset + 1))" "$APP_LOG" | grep -q "listening on 127.0.0.1:$port\$" || return 1
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null || return 1
    fi
}

heartbeat_ready() {
    tail -c "+$((offset + 1))" "$APP_LOG" | grep -q " heartbeat 1 "
}

# Starts demo-http on the first port in $PORTS (--upstream "$DEMO_UPSTREAM" when set).
demo_start_http() {
    bin=${DEMO_HTTP_BIN:-demo-http}
    port=$(printf '%s\n' "${PORTS:-}" | awk '{ print $1 }')
    case "$port" in
        '' | *[!0-9]*)
            echo "$APP: PORTS names no port (PORTS='${PORTS:-}')" >&2
            exit "${APP_START_ERR:-102}"
            ;;
    esac
    exit_if_running
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "$APP: demo-http binary not found: '$bin' (put it on PATH or set DEMO_HTTP_BIN)" >&2
        exit "${APP_START_ERR:-102}"
    fi
    set -- --port "$port" --name "$APP"
    if [ -n "${DEMO_UPSTREAM:-}" ]; then
        set -- "$@" --upstream "$DEMO_UPSTREAM"
    fi
    launch ", http://127.0.0.1:$port/" http_ready "$bin" "$@"
}

# Starts the heartbeat loop ($1: the path of heartbeat.sh).
demo_start_heartbeat() {
    exit_if_running
    launch "" heartbeat_ready /bin/sh "$1"
}

# signal_and_wait SIGNAL SECONDS EXIT_CODE: signals the recorded pid and waits for it.
signal_and_wait() {
    read_pid
    if [ -z "$pid" ] || ! alive "$pid"; then
        rm -f "$APP_PID"
        echo "$APP not running"
        exit 0
    fi
    kill "-$1" "$pid" 2>/dev/null || true
    i=0
    while alive "$pid"; do
        if [ "$i" -ge $(($2 * 10)) ]; then
            echo "$APP: pid $pid still alive $2 s after SIG$1" >&2
            exit "$3"
        fi
        nap
        i=$((i + 1))
    done
    rm -f "$APP_PID"
    echo "$APP stopped by SIG$1 (pid $pid)"
}

# SIGTERM, up to 5 s; $APP_STOP_ERR when it outlives that (kill.sh is the next step).
demo_stop() {
    signal_and_wait TERM 5 "${APP_STOP_ERR:-103}"
}

demo_kill() {
    signal_and_wait KILL 2 "${APP_KILL_ERR:-106}"
}

# stop.sh then start.sh next to the calling script ($1: its directory).
demo_restart() {
    if ! "$1/stop.sh"; then
        echo "$APP: restart: stop failed" >&2
        exit "${APP_RESTART_ERR:-105}"
    fi
    if ! "$1/start.sh"; then
        echo "$APP: restart: start failed" >&2
        exit "${APP_RESTART_ERR:-105}"
    fi
}

demo_check() {
    read_pid
    if [ -n "$pid" ] && alive "$pid"; then
        echo "$APP running (pid $pid)"
        exit 0
    fi
    echo "$APP not running"
    exit "${APP_STATUS_ERR:-101}"
}
