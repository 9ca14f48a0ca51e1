#!/bin/sh
# The PM2 fixture's "api": one line per second, naming its instance and arguments.
while :; do
    echo "api instance $INSTANCE_ID ($NODE_ENV) port $((PORT_BASE + INSTANCE_ID)) args: $*"
    sleep 1
done
