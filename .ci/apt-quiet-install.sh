#!/usr/bin/env bash
# Usage: apt-quiet-install.sh COMMAND PACKAGE
# Makes sure COMMAND is on PATH, installing Debian's PACKAGE if it is not, without ever
# starting the service the package ships: the tests run their own children of it (on
# 127.0.0.1, with private config and data), so no system service is enabled, started or
# touched. Idempotent and quiet; a warm machine pays one `command -v`. Needs root on a
# fresh machine (apt-get). Shared by .ci/influx-up.sh and .ci/prometheus-up.sh.
set -euo pipefail

command=$1
package=$2
die() { echo "$package: $*" >&2; exit 1; }

command -v "$command" >/dev/null 2>&1 && exit 0

[ "$(id -u)" -eq 0 ] || die "$command is missing; run as root to install the $package package"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 stops the package's maintainer scripts from starting the system
# service.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq >/dev/null || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends "$package" >/dev/null || die "apt-get install $package failed"
command -v "$command" >/dev/null 2>&1 || die "$package installed but $command is not on PATH"
