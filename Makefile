# The two commands the README promises, plus the pieces they are made of.
#   make demo   build everything (host, modules into modules-dist/, demo service) and serve the demo
#   make test   the whole test suite: format, lints, unit and integration tests
# Honours CARGO_TARGET_DIR (CI keeps it outside the clone as a cache).

CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
DEMO_CONFIG := examples/demo/apollo.pig

.PHONY: build modules demo test fmt-check lint unit test-deps

# Libraries too: module crates are cdylibs. Then the man pages, generated from the CLI
# definition by the binary just built (one page per command, into target/.../man/man1).
build:
	$(CARGO) build --release --workspace
	$(TARGET_DIR)/release/apollo man --out-dir $(TARGET_DIR)/release/man/man1

# Stages every module cdylib the workspace builds (modules/* are named module-*, plus
# the hello-module template) into modules-dist/, by copy + rename so a running host's
# reload never sees half a file.
modules: build
	mkdir -p modules-dist
	@for so in $(TARGET_DIR)/release/libmodule_*.so $(TARGET_DIR)/release/libhello_module.so; do \
		[ -e "$$so" ] || continue; \
		name=$$(basename "$$so" .so | sed 's/^lib//'); \
		cp "$$so" "modules-dist/.$$name.tmp" && mv "modules-dist/.$$name.tmp" "modules-dist/$$name.so"; \
		echo "staged $$name.so"; \
	done

# The demo loads, from its own folder, the modules that need nothing but this machine:
# module-influx needs an InfluxDB server, which a fresh machine does not run, so it is
# built and staged in modules-dist/ but not given to the demo (copy it into
# $(DEMO_MODULES) next to a running influxd to see it work).
# The demo's manage scripts find demo-http on PATH.
DEMO_MODULES := apollo-data/demo/modules
DEMO_MODULE_FILES := module_sys.so module_db_migrate.so module_config.so hello_module.so
demo: modules
	mkdir -p $(DEMO_MODULES)
	@for so in $(DEMO_MODULE_FILES); do \
		cp "modules-dist/$$so" "$(DEMO_MODULES)/.$$so.tmp" && mv "$(DEMO_MODULES)/.$$so.tmp" "$(DEMO_MODULES)/$$so"; \
	done
	PATH="$(TARGET_DIR)/release:$$PATH" $(TARGET_DIR)/release/apollo serve --config $(DEMO_CONFIG)

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Real components the integration tests talk to (a local dockerd and its image,
# influxd's package, the pinned PyPI packages in one venv: the nx-27017 MongoDB-wire
# server, apollo-client-python, py-consul; the pinned npm packages in tests/clients/node:
# ctrip-apollo, seneca, seneca-transport, patrun; tmux for the terminal dashboard,
# Prometheus for the /metrics test, Debian's chromium and chromedriver for the dashboard
# tests; nginx and wrk, the gateway bench's side-by-side proxy and load generator; etcd, the catalog bench's peer);
# idempotent, so a warm machine pays only a ping.
test-deps:
	./.ci/docker-up.sh
	./.ci/influx-up.sh
	./.ci/python-clients-up.sh
	./.ci/node-clients-up.sh
	./.ci/tmux-up.sh
	./.ci/prometheus-up.sh
	./.ci/browser-up.sh
	./.ci/gateway-peers-up.sh
	./.ci/etcd-up.sh

# `cargo test` builds test harnesses, not the artifacts the integration tests load
# (module .so files, fixture modules, demo-http, the apollo binary beside them): build
# those first, or a fresh CARGO_TARGET_DIR finds nothing to load.
# APOLLO_REQUIRE_COMPONENTS=1: a test whose real component (prometheus, …) is missing
# fails here instead of skipping, since test-deps just installed it.
unit: export APOLLO_REQUIRE_COMPONENTS := 1
unit: test-deps
	$(CARGO) build --workspace
	$(CARGO) test --workspace --no-fail-fast

test: fmt-check lint unit
