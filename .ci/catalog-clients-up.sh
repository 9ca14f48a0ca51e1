#!/usr/bin/env bash
# Installs the real Consul client the catalog tests drive (tests/tests/it/module_catalog.rs):
# PyPI py-consul 1.8 into the shared test venv. The tests run it as a subprocess against
# the real host with module-catalog loaded. Idempotent: a warm machine pays one import.
set -euo pipefail

VENV="${APOLLO_TEST_VENV:-/var/tmp/apollo-test-venv}"
PIN="py-consul==1.8.0"

die() { echo "catalog-clients-up: $*" >&2; exit 1; }

if "$VENV/bin/python" -c 'import consul, importlib.metadata as m; assert m.version("py-consul").startswith("1.8")' >/dev/null 2>&1; then
	exit 0
fi
command -v python3 >/dev/null 2>&1 || die "python3 is missing (needed for the py-consul client)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "cannot create the venv $VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "$PIN" || die "pip install $PIN failed"
"$VENV/bin/python" -c 'import consul' || die "py-consul installed but does not import"
echo "catalog-clients-up: py-consul ready in $VENV"
