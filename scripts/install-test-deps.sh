#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo. Idempotent: installs only
# what is missing, so it is cheap to run before every test run.
set -euo pipefail

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# promtool (`check metrics`) validates the /metrics exposition.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The console's end-to-end test drives Debian's Chromium over WebDriver.
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ ${#need[@]} -gt 0 ]; then
    echo "install-test-deps: installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
