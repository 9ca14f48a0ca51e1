#!/usr/bin/env bash
# Makes sure Debian's `chromium` and `chromium-driver` (chromedriver) are installed for
# the integration test tests/tests/it/dashboard.rs, which drives the dashboard headless
# over WebDriver. Starts nothing: the test runs its own chromedriver child on 127.0.0.1
# with a fresh browser profile. Idempotent: a warm machine pays two `command -v`.
set -euo pipefail
here="$(dirname "$0")"
"$here/apt-quiet-install.sh" chromium chromium
exec "$here/apt-quiet-install.sh" chromedriver chromium-driver
