#!/usr/bin/env bash
# System tools some tests drive: headless Chromium + chromedriver (the Swagger UI browser test)
# and promtool (checks a real /metrics scrape and the alert rules). Installed from Debian's
# packages when missing and running as root; otherwise the tests that need them say how.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test tools missing (${missing[*]}): install them with apt-get as root" >&2
  exit 0
fi
echo "installing test tools: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# RUNLEVEL=1: the prometheus package must not start a server; only promtool is used.
RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The prometheus package starts a server we do not need; only promtool is used.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
pkill -x prometheus >/dev/null 2>&1 || true
