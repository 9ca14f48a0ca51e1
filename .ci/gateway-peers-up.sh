#!/usr/bin/env bash
# Makes sure the gateway bench's peers are installed (tests/benches/gateway.rs): Debian's
# nginx 1.22 (`nginx-light`: the upstream module with keepalive is part of its core) as
# the side-by-side reverse proxy, and Debian's `wrk` as the load generator. Starts
# nothing: the bench runs its own nginx child on 127.0.0.1 with a private prefix and
# config, and the package's service is kept from starting by apt-quiet-install.sh's
# policy-rc.d. See DESIGN.md §5. Idempotent: a warm machine pays two `command -v`.
set -euo pipefail

here=$(dirname "$0")
# nginx lives in /usr/sbin, which a non-root PATH may lack; the bench looks there too.
PATH="$PATH:/usr/sbin" "$here/apt-quiet-install.sh" nginx nginx-light
"$here/apt-quiet-install.sh" wrk wrk
