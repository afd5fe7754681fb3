#!/usr/bin/env bash
# The OpenStack on loopback that the cloud tests (tests/it/cloud.rs) run against: Keystone,
# Glance, Placement, Neutron, Nova (fake driver), Octavia (noop) and Cinder (fake), started with
# the shared recipe in ../shared/tools/openstack/.
#
#   scripts/prereqs/openstack.sh          the Debian packages the stack needs (what .ci/run's
#                                         prerequisites loop runs; quick, and done before anything
#                                         else runs apt-get in parallel)
#   scripts/prereqs/openstack.sh start    start the stack, or reuse a running one (.ci/run runs
#                                         this in the background, beside the Go builds)
#   scripts/prereqs/openstack.sh clouds   print the clouds.yaml path the tests read
#
# State: $CAPI_MANAGE_OPENSTACK_DIR, default ${XDG_CACHE_HOME:-$HOME/.cache}/capi-manage/openstack.
# The tests find the stack through $CAPI_MANAGE_TEST_OPENSTACK (a clouds.yaml path), or else
# through the fixed file <state>/clouds.yaml. A stack that is already running (Keystone answers
# on 127.0.0.1:5000) is reused: give its clouds.yaml in CAPI_MANAGE_TEST_OPENSTACK if it was
# started elsewhere. Idempotent; needs root (apt-get, ports).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
tools=$here/../shared/tools/openstack
state=${CAPI_MANAGE_OPENSTACK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/capi-manage/openstack}
log() { echo "[openstack] $*" >&2; }

answers() { # port [path]
	curl -s -m 3 -o /dev/null "http://127.0.0.1:$1${2:-/}"
}

clouds_yaml() {
	if [ -n "${CAPI_MANAGE_TEST_OPENSTACK:-}" ]; then
		echo "$CAPI_MANAGE_TEST_OPENSTACK"
	else
		echo "$state/clouds.yaml"
	fi
}

packages() {
	local missing=()
	[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
	command -v qemu-img >/dev/null || missing+=(qemu-utils)
	command -v curl >/dev/null || missing+=(curl)
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
	if [ ${#missing[@]} -gt 0 ]; then
		log "apt-get install ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

start() {
	[ -d "$tools" ] || { log "missing $tools (CI clones the project with ../shared beside it)"; exit 1; }
	local t0=$SECONDS clouds
	clouds=$(clouds_yaml)
	if [ "$clouds" != "$state/clouds.yaml" ]; then
		answers 5000 /v3 || { log "CAPI_MANAGE_TEST_OPENSTACK=$clouds is set but Keystone does not answer on 127.0.0.1:5000"; exit 1; }
		# Started elsewhere (CAPI_MANAGE_TEST_OPENSTACK names its clouds.yaml): only check it.
		[ -s "$clouds" ] || { log "Keystone answers on 127.0.0.1:5000 but $clouds does not exist"; exit 1; }
		for port in 8774 9292 9696 9876; do
			answers "$port" || { log "the running stack lacks the service on port $port"; exit 1; }
		done
		log "reusing the running stack ($clouds)"
		return
	fi
	if answers 5000 /v3 && [ ! -s "$clouds" ]; then
		log "Keystone answers on 127.0.0.1:5000 but was not started from $state: set CAPI_MANAGE_TEST_OPENSTACK to its clouds.yaml"
		exit 1
	fi
	packages
	mkdir -p "$state"
	local core=yes
	for port in 5000 8774 9292 9696; do answers "$port" || core=no; done
	if [ $core = yes ] && [ -s "$state/clouds.yaml" ]; then
		log "core services already running ($state)"
	else
		log "services.sh start (about 2.5 min from empty)"
		OSH_DIR=$state bash "$tools/services.sh" start
	fi
	answers 9876 || { log "octavia.sh"; OSH_DIR=$state bash "$tools/octavia.sh"; }
	answers 8776 || { log "cinder.sh"; OSH_DIR=$state bash "$tools/cinder.sh"; }
	for port in 5000 8774 8776 9292 9696 9876; do
		answers "$port" || { log "a service did not come up on 127.0.0.1:$port (logs: $state/svc/log)"; exit 1; }
	done
	log "up in $((SECONDS - t0)) s; clouds.yaml: $state/clouds.yaml"
}

case "${1:-packages}" in
packages) packages ;;
start) start ;;
clouds) clouds_yaml ;;
*)
	echo "usage: $0 [packages|start|clouds]" >&2
	exit 2
	;;
esac
