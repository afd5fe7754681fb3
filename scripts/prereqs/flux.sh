#!/usr/bin/env bash
# Prerequisites of the Flux and bootstrap tests: Flux's source-controller,
# kustomize-controller and helm-controller, built from their Go modules (scripts/test-binaries).
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/test-binaries source-controller kustomize-controller helm-controller
