#!/usr/bin/env bash
# Prerequisites for the kind tests (tests/it/kind.rs): a running Docker engine and busybox-static,
# from which the tests build their stand-in node image. Idempotent: installs only what is missing
# and starts dockerd in the background only when its socket does not answer. Needs root (CI runs
# it as root on a fresh machine).
set -euo pipefail

sock=/var/run/docker.sock
log=${DOCKERD_LOG:-/var/log/capi-manage-dockerd.log}

answers() {
	# A ping through the socket; curl may be absent, so use the docker CLI when there is one.
	if command -v docker >/dev/null 2>&1; then
		docker -H "unix://$sock" version --format '{{.Server.Version}}' >/dev/null 2>&1
	else
		[ -S "$sock" ]
	fi
}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
# The stand-in node image needs the static busybox (Debian's plain `busybox` is dynamically linked).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
	missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if answers; then
	echo "dockerd: already answering on $sock"
	exit 0
fi

# A dockerd that died (or a machine handed over with its state) leaves a pid file that stops a
# new one from starting.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	rm -f "$pidfile"
fi

# Start dockerd detached from this shell so it outlives the script (and CI's step).
setsid nohup dockerd --host "unix://$sock" >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
	if answers; then
		echo "dockerd: started (log: $log)"
		exit 0
	fi
	sleep 0.5
done
echo "dockerd did not answer on $sock within 30s; its log ($log) ends with:" >&2
tail -n 20 "$log" >&2 || true
exit 1
