#!/usr/bin/env bash
# Starts the Docker engine the integration tests talk to (tests/tests/it/docker.rs) and
# imports the one image they use, built from a busybox rootfs so no registry is needed.
# Idempotent and quiet on success: a running engine and an existing image are reused.
# Needs root on a fresh machine (apt-get, dockerd). See DESIGN.md §5.
set -euo pipefail

SOCK=/tmp/apollo-test-docker.sock
STATE=/tmp/apollo-test-docker
IMAGE=apollo-test/busybox:1
LOG="$STATE/dockerd.log"

die() { echo "docker-up: $*" >&2; exit 1; }

ping_engine() {
	curl -fsS --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
}

# Packages only when something is missing: apt is the slow part of a cold start.
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "missing ${need[*]}; run as root to install them"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
		|| die "apt-get install ${need[*]} failed"
fi

mkdir -p "$STATE"
if ! ping_engine; then
	# A stale socket from a dead engine would make dockerd refuse to start.
	rm -f "$SOCK"
	# No bridge and no iptables: containers run with network mode "none" only. vfs needs
	# no kernel storage driver support, so this works inside other containers too.
	nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
		--host "unix://$SOCK" --data-root "$STATE/root" --exec-root "$STATE/exec" \
		--pidfile "$STATE/docker.pid" >"$LOG" 2>&1 </dev/null &
	for _ in $(seq 1 60); do
		ping_engine && break
		sleep 0.5
	done
	ping_engine || { tail -n 20 "$LOG" >&2 || true; die "dockerd did not answer on $SOCK within 30 s (log: $LOG)"; }
fi

if ! docker -H "unix://$SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
	rootfs=$(mktemp -d)
	trap 'rm -rf "$rootfs"' EXIT
	mkdir -p "$rootfs/bin" "$rootfs/tmp"
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in sh sleep echo cat; do
		ln -s busybox "$rootfs/bin/$applet"
	done
	tar -C "$rootfs" -c . | docker -H "unix://$SOCK" import - "$IMAGE" >/dev/null \
		|| die "importing $IMAGE failed"
fi
