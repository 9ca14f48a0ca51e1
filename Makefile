# The two commands the README promises, plus the pieces they are made of.
#   make demo   build everything (host, modules into modules-dist/, demo service) and serve the demo
#   make test   the whole test suite: format, lints, unit and integration tests
# Honours CARGO_TARGET_DIR (CI keeps it outside the clone as a cache).

CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
DEMO_CONFIG := examples/demo/apollo.pig

.PHONY: build modules demo test fmt-check lint unit

build:
	$(CARGO) build --release --workspace --bins

# Stages every module cdylib the workspace builds into modules-dist/.
# (No module crates exist until the plugin-system issue; the loop then has work.)
modules: build
	mkdir -p modules-dist
	@for so in $(TARGET_DIR)/release/libmodule_*.so; do \
		[ -e "$$so" ] || continue; \
		cp "$$so" modules-dist/.tmp.so && mv modules-dist/.tmp.so "modules-dist/$$(basename "$$so" | sed 's/^lib//')"; \
		echo "staged $$so"; \
	done

# The demo's manage scripts find demo-http on PATH.
demo: modules
	PATH="$(TARGET_DIR)/release:$$PATH" $(TARGET_DIR)/release/apollo serve --config $(DEMO_CONFIG)

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --no-fail-fast

test: fmt-check lint unit
