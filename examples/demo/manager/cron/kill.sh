#!/bin/sh
# kill.sh - force-kill this service (SIGKILL). The logic is in ../.shared/demo.sh.
set -eu
dir=$(dirname -- "$0")
. "$dir/../.shared/demo.sh"
demo_kill
