#!/usr/bin/env bash
# Makes sure the catalog bench's peer is installed (tests/benches/catalog_watch.rs):
# Debian's etcd 3.4 (`etcd-server`), whose `/v3/watch` stream is measured beside the
# catalog's blocking queries. Starts nothing: the bench runs its own single-node etcd
# child with a temp data dir on loopback ports, and the package's service is kept from
# starting by apt-quiet-install.sh's policy-rc.d. See DESIGN.md §5. Idempotent: a warm
# machine pays one `command -v`.
set -euo pipefail

here=$(dirname "$0")
"$here/apt-quiet-install.sh" etcd etcd-server
