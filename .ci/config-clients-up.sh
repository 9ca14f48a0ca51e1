#!/usr/bin/env bash
# Installs the real Ctrip Apollo clients that tests/tests/it/module_config.rs drives as
# subprocesses (through tests/clients/*.js|*.py) against module-config:
# - npm ctrip-apollo, pinned by tests/clients/node/package-lock.json, into
#   tests/clients/node/node_modules (gitignored), with `npm ci` so the lockfile decides;
# - PyPI apollo-client-python (module `apollo`) into the shared test venv
#   (APOLLO_TEST_VENV, default /var/tmp/apollo-test-venv; .ci/mongo-up.sh uses it too),
#   created here if it is missing.
# Starts nothing. Idempotent: a warm machine pays one `node -e` and one import.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NODE_DIR="$ROOT/tests/clients/node"
NODE_PIN="4.5.1" # must match tests/clients/node/package.json
VENV="${APOLLO_TEST_VENV:-/var/tmp/apollo-test-venv}"
PY_PIN="apollo-client-python==0.2.5"

die() { echo "config-clients-up: $*" >&2; exit 1; }

node_ready() {
	(cd "$NODE_DIR" && node -e '
		const v = require("ctrip-apollo/package.json").version;
		if (v !== process.argv[1]) process.exit(1);
		require("ctrip-apollo");' "$NODE_PIN") >/dev/null 2>&1
}

python_ready() {
	"$VENV/bin/python" -c '
import sys
from importlib.metadata import version
import apollo.apollo_client
sys.exit(0 if version("apollo-client-python") == sys.argv[1] else 1)' "${PY_PIN#*==}" >/dev/null 2>&1
}

if ! node_ready; then
	command -v node >/dev/null 2>&1 || die "node is missing (Node.js 20 with npm is part of this machine kind)"
	command -v npm >/dev/null 2>&1 || die "npm is missing (Node.js 20 with npm is part of this machine kind)"
	# --ignore-scripts: none of these packages needs an install script.
	(cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
		die "npm ci in $NODE_DIR failed"
	node_ready || die "ctrip-apollo $NODE_PIN installed but does not load"
	echo "config-clients-up: ctrip-apollo $NODE_PIN ready in $NODE_DIR/node_modules"
fi

if ! python_ready; then
	if [ ! -x "$VENV/bin/python" ]; then
		command -v python3 >/dev/null 2>&1 || die "python3 is missing (needed for apollo-client-python)"
		python3 -m venv "$VENV" || die "cannot create the venv $VENV"
	fi
	"$VENV/bin/pip" install -q --disable-pip-version-check "$PY_PIN" || die "pip install $PY_PIN failed"
	python_ready || die "$PY_PIN installed but does not import"
	echo "config-clients-up: $PY_PIN ready in $VENV"
fi
