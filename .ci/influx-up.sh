#!/usr/bin/env bash
# Makes sure Debian's InfluxDB 1.x (`influxd`) is installed for the integration test
# tests/tests/it/module_influx.rs. Starts nothing: the test runs its own influxd child on
# 127.0.0.1 with a private data directory. See DESIGN.md §5.
exec "$(dirname "$0")/apt-quiet-install.sh" influxd influxdb
