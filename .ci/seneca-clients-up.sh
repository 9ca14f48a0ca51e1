#!/usr/bin/env bash
# Installs the real Seneca packages the gateway's tests drive as subprocesses (through
# tests/clients/seneca_*.js) and check against (modules/gateway/src/seneca/patrun.rs runs
# tests/clients/seneca_patrun_vectors.js when patrun is present):
# - npm seneca, seneca-transport and patrun, pinned by tests/clients/node/package-lock.json,
#   into tests/clients/node/node_modules (gitignored), with `npm ci` so the lockfile decides.
# seneca 3.38 loads seneca-transport itself (option legacy.transport, on by default), so
# both must resolve from that directory.
# Starts nothing. Idempotent: a warm machine pays one `node -e`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NODE_DIR="$ROOT/tests/clients/node"
# Must match tests/clients/node/package.json.
PINS="seneca@3.38.0 seneca-transport@8.3.0 patrun@7.3.0"

die() { echo "seneca-clients-up: $*" >&2; exit 1; }

node_ready() {
	(cd "$NODE_DIR" && node -e '
		for (const pin of process.argv.slice(1)) {
			const at = pin.lastIndexOf("@");
			const name = pin.slice(0, at), want = pin.slice(at + 1);
			const got = require(name + "/package.json").version;
			if (got !== want) { console.error(name + " is " + got + ", not " + want); process.exit(1); }
			require(name);
		}' $PINS) >/dev/null 2>&1
}

if ! node_ready; then
	command -v node >/dev/null 2>&1 || die "node is missing (Node.js 20 with npm is part of this machine kind)"
	command -v npm >/dev/null 2>&1 || die "npm is missing (Node.js 20 with npm is part of this machine kind)"
	# --ignore-scripts: none of these packages needs an install script.
	(cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
		die "npm ci in $NODE_DIR failed"
	node_ready || die "$PINS installed but do not all load"
	echo "seneca-clients-up: $PINS ready in $NODE_DIR/node_modules"
fi
