#!/usr/bin/env bash
# Makes sure tmux is installed: tests/tests/it/monit.rs drives `apollo monit` in a real
# terminal inside a private tmux server (its own socket name; no user session touched).
# Idempotent and quiet; a warm machine pays one `command -v`. Needs root on a fresh
# machine (apt-get).
set -euo pipefail

die() { echo "tmux-up: $*" >&2; exit 1; }

command -v tmux >/dev/null 2>&1 && exit 0

[ "$(id -u)" -eq 0 ] || die "tmux is missing; run as root to install it (apt-get install tmux)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends tmux >/dev/null || die "apt-get install tmux failed"
command -v tmux >/dev/null 2>&1 || die "tmux installed but not on PATH"
