#!/bin/sh
# start.sh - start the heartbeat loop (heartbeat.sh next to this script); exit 0 once
# the first heartbeat is logged. The logic is in ../.shared/demo.sh.
set -eu
dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$dir/../.shared/demo.sh"
demo_start_heartbeat "$dir/heartbeat.sh"
