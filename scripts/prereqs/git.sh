#!/usr/bin/env bash
# Prerequisites of the git tests (tests/it/git.rs) and the push bench: the real git on the
# server side (git-receive-pack, git http-backend, git fsck) and Debian's OpenSSH server and
# client. The library itself needs none of them. Idempotent; run as root on Debian/Ubuntu.
set -euo pipefail

need=()
command -v git >/dev/null 2>&1 || need+=(git)
[ -x /usr/lib/git-core/git-http-backend ] || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)

if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: no xauth etc.; policy-rc.d keeps the package from starting a
    # system sshd (the tests start their own on a loopback port).
    created_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${need[@]}"
    [ -z "$created_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
# sshd's privilege-separation directory (normally created by the service unit).
mkdir -p /run/sshd
chmod 0755 /run/sshd
