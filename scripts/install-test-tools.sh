#!/usr/bin/env bash
# System tools some tests drive: headless Chromium + chromedriver (the Swagger UI browser test),
# promtool (checks a real /metrics scrape and the alert rules) and nginx (the buffering reverse
# proxy of docker-compose.yml, run unprivileged on loopback by tests/integration/test_proxy.py).
# Installed from Debian's packages when missing and running as root; otherwise the tests that
# need them say how.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# Debian installs it in /usr/sbin, which a non-root PATH may lack.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)

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
# RUNLEVEL=1: the prometheus and nginx packages must not start their servers; only promtool
# is used, and the tests start nginx themselves with their own configuration.
RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Where the packages started a server anyway (an init system that ignores RUNLEVEL), stop it.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
  pkill -x prometheus >/dev/null 2>&1 || true
fi
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
  # Only the system instance (its pid file); test instances run with their own.
  if [ -s /run/nginx.pid ]; then /usr/sbin/nginx -s quit >/dev/null 2>&1 || true; fi
fi
