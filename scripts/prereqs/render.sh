#!/usr/bin/env bash
# Prerequisites of the render tests and bench: the real kustomize (v5.8.1, pinned in
# scripts/test-binaries) to compare against. Idempotent: a cached build is reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/test-binaries kustomize
