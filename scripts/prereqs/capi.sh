#!/usr/bin/env bash
# Prerequisites of the move and vendor tests: clusterctl, the peer they are compared with, built
# from its Go module (scripts/test-binaries). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/test-binaries clusterctl
