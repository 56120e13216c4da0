#!/usr/bin/env bash
# Installs the Debian packages helios needs to build, test and benchmark, and nothing else.
# Idempotent and non-interactive: packages already present are not touched; apt runs only when
# something is missing. Used by `make run`, `make test` and `make bench`.
set -euo pipefail

packages=(
  gcc g++ make cmake pkg-config       # toolchain
  liblmdb-dev lmdb-utils              # index
  libzstd-dev                         # record compression
  liblz4-dev                          # L2 cache compression
  librust-blake3-dev                  # official BLAKE3 C sources (compiled into a static library)
  libmicrohttpd-dev                   # helios serve (HTTP/1.1, epoll)
  libgnutls28-dev openssl             # helios serve over HTTPS (reloadable certificate); test CAs
  libjansson-dev                      # JSON bodies of the HTTP API
  libcurl4-openssl-dev                # push/pull, the S3 backend
  libinih-dev                         # helios.conf (INI)
  libfuse3-dev fuse3                  # helios mount (a read-only FUSE file system; fusermount3)
  libssl-dev                          # SHA-256 for the Bazel cache protocol (libcrypto only)
  libcmocka-dev                       # unit tests
  curl ccache                         # HTTP tests: curl for the Bazel protocol, real ccache builds
  prometheus                          # promtool checks the /metrics exposition and the alert rules
  man-db bsdextrautils                # tests render the man pages (man -l, col)
  dpkg-dev                            # make deb (with debhelper and lintian: see the Makefile)
  b3sum                               # tests compare `helios hash` with it
  python3-prometheus-client           # tests parse the /metrics text with the reference parser
  clang libclang-rt-14-dev            # fuzz targets (libFuzzer)
  valgrind                            # tests run a store's first uses under memcheck
)
[ "${HELIOS_DEPS_EXTRA:-}" ] && read -r -a extra <<<"$HELIOS_DEPS_EXTRA" && packages+=("${extra[@]}")
# the S3 tests run an S3-compatible server from npm (tests/s3): Debian's Node.js unless one is here
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

# the npm packages of tests/s3, as its lock file pins them (once; `npm ci` is idempotent but slow)
s3_test_server() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/s3"
  [ -f "$dir/node_modules/s3rver/package.json" ] && return 0
  echo "install-deps: npm ci in tests/s3 (the S3 test server)" >&2
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
}

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { s3_test_server; exit 0; }

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
else
  sudo=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages that ship a daemon (prometheus) must not start it here: a policy-rc.d that says no
# for the duration of the install, removed afterwards unless it was already there.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e $policy ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null && $sudo chmod 755 $policy && own_policy=1
fi
trap '[ -n "$own_policy" ] && $sudo rm -f $policy' EXIT
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
s3_test_server
