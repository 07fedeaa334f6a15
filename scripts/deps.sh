#!/bin/sh
# Install the Debian 12 packages Outpost needs, only when one is missing.
# Usage: scripts/deps.sh [build|package|test|fuzz|all]   (default: all)
set -eu
want="${1:-all}"
# make deb, and its test: dpkg-shlibdeps, lintian, groff and man for the man pages
package_pkgs="dpkg-dev lintian groff-base man-db"
pkgs="gcc make libmosquitto-dev mosquitto libsodium-dev libsqlite3-dev libcjson-dev libseccomp-dev libssl-dev libxgboost-dev libmicrohttpd-dev libpq-dev python3 xz-utils"
test_pkgs="libcmocka-dev postgresql python3-paho-mqtt python3-jsonschema procps openssl curl chromium chromium-driver $package_pkgs"
fuzz_pkgs="clang libclang-rt-14-dev"
case "$want" in
  build) ;;
  package) pkgs="$package_pkgs" ;;
  test) pkgs="$pkgs $test_pkgs" ;;
  fuzz) pkgs="$pkgs $test_pkgs $fuzz_pkgs" ;;
  all) pkgs="$pkgs $test_pkgs $fuzz_pkgs cppcheck clang-format" ;;
  *) echo "usage: $0 [build|package|test|fuzz|all]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install:$missing" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
