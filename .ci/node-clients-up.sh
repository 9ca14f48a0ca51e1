#!/usr/bin/env bash
# Installs the real npm packages the integration tests drive as subprocesses, exactly as
# pinned in tests/clients/node/package.json and its lockfile (`npm ci`, so the lockfile
# decides), into tests/clients/node/node_modules (gitignored): ctrip-apollo
# (module_config.rs, dashboard.rs), seneca, seneca-transport and patrun (module_gateway.rs
# and the gateway's patrun port check). seneca 3.38 loads seneca-transport itself (option
# legacy.transport, on by default), so both resolve from that one directory.
# Starts nothing. Idempotent: a warm machine pays one `node -e`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NODE_DIR="$ROOT/tests/clients/node"

die() { echo "node-clients-up: $*" >&2; exit 1; }

# Every dependency of package.json is installed at its pinned version and loads.
pins_met() {
	(cd "$NODE_DIR" && node -e '
		const deps = require("./package.json").dependencies;
		for (const [name, want] of Object.entries(deps)) {
			const got = require(name + "/package.json").version;
			if (got !== want) { console.error(name + " is " + got + ", not " + want); process.exit(1); }
			require(name);
		}') >/dev/null 2>&1
}

pins_met && exit 0
command -v node >/dev/null 2>&1 || die "node is missing (Node.js 20 with npm is part of this machine kind)"
command -v npm >/dev/null 2>&1 || die "npm is missing (Node.js 20 with npm is part of this machine kind)"
# --ignore-scripts: none of these packages needs an install script.
(cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
	die "npm ci in $NODE_DIR failed"
pins_met || die "npm ci ran, but not every package of $NODE_DIR/package.json loads at its pin"
echo "node-clients-up: the packages of $NODE_DIR/package.json are ready"
