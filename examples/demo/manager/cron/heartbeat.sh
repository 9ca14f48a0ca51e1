#!/bin/sh
# heartbeat.sh - the "cron" demo service itself: print a heartbeat line every
# $HEARTBEAT_INTERVAL seconds (default 5) until SIGTERM. start.sh runs it with nohup
# and its output appended to $APP_LOG; it is not a manage script.
set -eu

interval=${HEARTBEAT_INTERVAL:-5}
case "$interval" in
    '' | *[!0-9]* | 0) interval=5 ;;
esac

# Sleep in a child we can wait for: `wait` returns as soon as SIGTERM arrives, so the
# trap runs at once and takes the sleeping child with it (no orphan left behind).
child=
trap 'if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; fi
      echo "$(date "+%Y-%m-%dT%H:%M:%S%z") heartbeat: stopping (SIGTERM)"
      exit 0' TERM

n=0
while :; do
    n=$((n + 1))
    echo "$(date '+%Y-%m-%dT%H:%M:%S%z') heartbeat $n from ${APP:-cron} (pid $$)"
    sleep "$interval" &
    child=$!
    wait "$child" || true
    child=
done
