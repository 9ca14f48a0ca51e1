#!/usr/bin/env bash
# Makes sure Debian's Prometheus server (`prometheus`, with `promtool`) is installed for
# the integration test tests/tests/it/metrics.rs. Starts nothing: the test runs its own
# prometheus child on 127.0.0.1 with a private config and TSDB folder, so the packaged
# service is never enabled, started or touched. Idempotent and quiet; a warm machine
# pays one `command -v`. Needs root on a fresh machine (apt-get). See DESIGN.md §5.
set -euo pipefail

die() { echo "prometheus-up: $*" >&2; exit 1; }

command -v prometheus >/dev/null 2>&1 && exit 0

[ "$(id -u)" -eq 0 ] || die "prometheus is missing; run as root to install the prometheus package"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 stops the package's maintainer scripts from starting the system
# service: the test owns every prometheus it talks to.
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
apt-get install -y -qq --no-install-recommends prometheus >/dev/null || die "apt-get install prometheus failed"
command -v prometheus >/dev/null 2>&1 || die "prometheus installed but not on PATH"
