#!/usr/bin/env bash
# Prerequisites of the seal tests beyond Rust and Go (idempotent):
# - unshare and mount (util-linux): the sealed-secrets controller runs in a private mount
#   namespace so its in-cluster service-account files can be bind-mounted per test;
# - the upstream kubeseal and controller binaries (scripts/test-binaries).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v unshare >/dev/null || ! command -v mount >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux mount
  else
    echo "seal prerequisites: install util-linux (unshare, mount)" >&2
    exit 1
  fi
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "seal prerequisites: the controller tests bind-mount in a private mount namespace and need root" >&2
fi
scripts/test-binaries kubeseal sealed-secrets-controller
