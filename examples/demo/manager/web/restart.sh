#!/bin/sh
# restart.sh - stop.sh then start.sh. The logic is in ../.shared/demo.sh.
set -eu
dir=$(dirname -- "$0")
. "$dir/../.shared/demo.sh"
demo_restart "$dir"
