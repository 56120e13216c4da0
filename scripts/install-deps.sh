#!/usr/bin/env bash
# Installs the Debian packages helios needs to build, test and benchmark, and nothing else.
# Idempotent and non-interactive: packages already present are not touched; apt runs only when
# something is missing. Used by `make run`, `make test` and `make bench`.
set -euo pipefail

packages=(
  gcc g++ make cmake pkg-config       # toolchain
  liblmdb-dev lmdb-utils              # index
  libzstd-dev                         # record compression
  librust-blake3-dev                  # official BLAKE3 C sources (compiled into a static library)
  libcmocka-dev                       # unit tests
  b3sum                               # tests compare `helios hash` with it
  python3-prometheus-client           # tests parse the /metrics text with the reference parser
  clang libclang-rt-14-dev            # fuzz targets (libFuzzer)
)
[ "${HELIOS_DEPS_EXTRA:-}" ] && read -r -a extra <<<"$HELIOS_DEPS_EXTRA" && packages+=("${extra[@]}")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
else
  sudo=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
