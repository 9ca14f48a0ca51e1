#!/usr/bin/env bash
# Makes sure Debian's InfluxDB 1.x (`influxd`) is installed for the integration test
# tests/tests/it/module_influx.rs. Starts nothing: the test runs its own influxd child on
# 127.0.0.1 with a private data directory, so no system service is enabled or touched.
# Idempotent and quiet; a warm machine pays one `command -v`. Needs root on a fresh
# machine (apt-get). See DESIGN.md §5.
set -euo pipefail

die() { echo "influx-up: $*" >&2; exit 1; }

command -v influxd >/dev/null 2>&1 && exit 0

[ "$(id -u)" -eq 0 ] || die "influxd is missing; run as root to install the influxdb package"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 stops the package's maintainer scripts from starting the system
# service: the test owns every influxd it talks to.
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
apt-get install -y -qq --no-install-recommends influxdb >/dev/null || die "apt-get install influxdb failed"
command -v influxd >/dev/null 2>&1 || die "influxdb installed but influxd is not on PATH"
