#!/usr/bin/env bash
# Makes sure Debian's Prometheus server (`prometheus`, with `promtool`) is installed for
# the integration test tests/tests/it/metrics.rs. Starts nothing: the test runs its own
# prometheus child on 127.0.0.1 with a private config and TSDB folder. See DESIGN.md §5.
exec "$(dirname "$0")/apt-quiet-install.sh" prometheus prometheus
