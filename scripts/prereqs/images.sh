#!/usr/bin/env bash
# Prerequisite of the images tests (tests/it/images.rs): the CNCF distribution registry, built
# from its Go module (scripts/test-binaries registry). Idempotent: a cached build is reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/test-binaries registry
