#!/usr/bin/env bash
# Installs the MongoDB-wire server the store tests talk to (tests/tests/it/store.rs):
# no mongod exists in any registry this project can reach, so the tests use the PyPI
# package nx-27017 (a wire-compatible server backed by SQLite) in a private venv. The
# tests start their own server processes through .ci/nx27017-launch.py; this script
# only makes sure the venv is there. Idempotent: a warm machine pays one import.
# Set APOLLO_TEST_MONGO_URL to run the same tests against a real MongoDB instead.
set -euo pipefail

VENV="${APOLLO_TEST_VENV:-/var/tmp/apollo-test-venv}"
PIN="nx-27017==0.8.1"

die() { echo "mongo-up: $*" >&2; exit 1; }

if "$VENV/bin/python" -c 'import nx_27017, pymongo' >/dev/null 2>&1; then
	exit 0
fi
command -v python3 >/dev/null 2>&1 || die "python3 is missing (needed for the nx-27017 test server)"
python3 -m venv "$VENV" || die "cannot create the venv $VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "$PIN" || die "pip install $PIN failed"
"$VENV/bin/python" -c 'import nx_27017, pymongo' || die "nx-27017 installed but does not import"
echo "mongo-up: nx-27017 ready in $VENV"
