#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, installing and starting it when needed.
#
# Idempotent and fast when everything is already there (one `docker info`). On a fresh machine it
#   1. apt-installs docker.io and debootstrap (the sandbox image is built offline from a debootstrap rootfs),
#   2. starts `dockerd --bridge=none --iptables=false` in the background (no bridge networking is needed:
#      sandbox containers run with --network none), logging to $AGENTKIT_DOCKERD_LOG,
#   3. waits until the engine answers.
# Usage: bash scripts/ensure-docker.sh        (needs root for steps 1 and 2)
set -euo pipefail

LOG="${AGENTKIT_DOCKERD_LOG:-/var/log/agentkit-dockerd.log}"
WAIT_S="${AGENTKIT_DOCKERD_WAIT_S:-150}"

say() { echo "[ensure-docker] $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    say "need root for: $*  (re-run this script as root)"; exit 1
  fi
}

engine_answers() { docker info >/dev/null 2>&1; }

missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v dockerd >/dev/null 2>&1 || { [[ " ${missing[*]-} " == *" docker.io "* ]] || missing+=(docker.io); }
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)

if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if engine_answers; then
  say "Docker engine is running"
  exit 0
fi

dockerd_running() {  # without pgrep: procps is not in every minimal image
  [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null
}

start_engine() {
  say "starting dockerd --bridge=none --iptables=false (log: $LOG)"
  as_root mkdir -p "$(dirname "$LOG")"
  # A containerd pid file left by an engine that was killed (e.g. with the session that started it) makes the next
  # dockerd wait for a containerd that is gone: remove it when its process is dead.
  local cpid=/var/run/docker/containerd/containerd.pid
  if [ -f "$cpid" ] && ! kill -0 "$(cat "$cpid")" 2>/dev/null; then as_root rm -f "$cpid"; fi
  # setsid + nohup: the engine must outlive this script and the shell that ran it.
  as_root setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false >>"$LOG" 2>&1 </dev/null &
}

if ! dockerd_running; then
  start_engine
else
  say "dockerd is already starting; waiting for it"
fi

starts=1
for _ in $(seq 1 $((WAIT_S * 4))); do
  if engine_answers; then
    say "Docker engine is up"
    exit 0
  fi
  # A dockerd that gave up (or was dying when we looked) is started again, at most 3 starts in all.
  if [ "$starts" -lt 3 ] && ! dockerd_running && ! pgrep -x dockerd >/dev/null 2>&1; then
    starts=$((starts + 1))
    start_engine
  fi
  sleep 0.25
done

say "the Docker engine did not answer within ${WAIT_S}s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1
