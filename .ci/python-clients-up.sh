#!/usr/bin/env bash
# Installs the real PyPI packages the integration tests drive as subprocesses, exactly as
# pinned in tests/clients/requirements.txt, into the shared test venv
# (APOLLO_TEST_VENV, default /var/tmp/apollo-test-venv), created here if it is missing:
# nx-27017 (the MongoDB-wire server the store tests start through .ci/nx27017-launch.py),
# apollo-client-python (module_config.rs) and py-consul (module_catalog.rs).
# Starts nothing. Idempotent: a warm machine pays one python start-up.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REQUIREMENTS="$ROOT/tests/clients/requirements.txt"
VENV="${APOLLO_TEST_VENV:-/var/tmp/apollo-test-venv}"

die() { echo "python-clients-up: $*" >&2; exit 1; }

# Every `name==version` line of the requirements is installed at that version.
pins_met() {
	"$VENV/bin/python" - "$REQUIREMENTS" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    pin = line.split("#", 1)[0].strip()
    if not pin:
        continue
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

pins_met && exit 0
if [ ! -x "$VENV/bin/python" ]; then
	command -v python3 >/dev/null 2>&1 || die "python3 is missing (the test clients run in a venv)"
	python3 -m venv "$VENV" || die "cannot create the venv $VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" ||
	die "pip install -r $REQUIREMENTS failed"
pins_met || die "installed, but $VENV does not hold every pin of $REQUIREMENTS"
echo "python-clients-up: $(grep -c '==' "$REQUIREMENTS") pinned packages ready in $VENV"
