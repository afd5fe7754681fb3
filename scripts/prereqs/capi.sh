#!/usr/bin/env bash
# Prerequisites of the move, vendor and webhook tests, built from their Go modules
# (scripts/test-binaries): clusterctl, the peer the move is compared with, and the Cluster API
# core, kubeadm bootstrap, kubeadm control plane and CAPO managers, whose webhooks the tests run,
# and ORC's manager, which resolves the Images CAPO waits for in the end-to-end test.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/test-binaries clusterctl capi-manager capi-kubeadm-bootstrap-manager capi-kubeadm-control-plane-manager capo-manager \
	orc-manager
