#!/bin/sh
# check.sh - exit 0 when this service runs, $APP_STATUS_ERR otherwise. The logic is in ../.shared/demo.sh.
set -eu
dir=$(dirname -- "$0")
. "$dir/../.shared/demo.sh"
demo_check
