#!/usr/bin/env bash
# Brings up a one-node SLURM cluster on this machine (munge, slurmctld, slurmd) so that tests and
# trials can submit real jobs. Idempotent: a second run only checks that the node is idle.
# Needs root; exits 3 with one line on stderr when it cannot (the SLURM tests then skip).
# Usage: bash scripts/slurm_local.sh [up|down|status]
set -euo pipefail

action=${1:-up}
conf_dir=/etc/slurm
conf=$conf_dir/slurm.conf
state=/var/lib/slurm
logs=/var/log/slurm
node=$(hostname -s)

cannot() { echo "slurm_local: $*" >&2; exit 3; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null && return 0
  command -v apt-get >/dev/null || cannot "SLURM is not installed and there is no apt-get to install it"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || cannot "apt-get update failed (no network?)"
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
    || cannot "apt-get install slurmctld slurmd slurm-client munge failed"
}

start_munge() {
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
      munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
      sleep 0.2
    done
    cannot "munged did not start (see /var/log/munge/munged.log)"
  fi
}

write_conf() {
  local cpus mem tmp
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  tmp=$(mktemp)
  cat > "$tmp" <<CONF
# Written by scripts/slurm_local.sh: a one-node cluster for tests (not for production).
ClusterName=inqlocal
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# Short credential lifetime: a requeued job may start again after it (default 120 s).
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=30
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation=$state/slurmctld
SlurmdSpoolDir=$state/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  install -d "$conf_dir" "$state/slurmctld" "$state/slurmd" "$logs"
  if [ -f "$conf" ] && cmp -s "$tmp" "$conf"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$conf"
  chmod 0644 "$conf"
  return 0
}

stop_daemons() {
  local p
  for p in /run/slurmd.pid /run/slurmctld.pid; do
    if pid_alive "$p"; then
      kill "$(cat "$p")"
      for _ in $(seq 50); do pid_alive "$p" || break; sleep 0.2; done
    fi
  done
}

wait_idle() {
  local st=""
  for _ in $(seq 150); do
    st=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n1 || true)
    case "$st" in
      idle|mixed|allocated|completing) return 0 ;;
      down*|drain*|fail*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  cannot "node $node is '$st', not idle (see $logs/slurmctld.log and $logs/slurmd.log)"
}

case "$action" in
  up)
    [ "$(id -u)" = 0 ] || cannot "needs root to install and start munge and SLURM"
    install_packages
    start_munge
    if write_conf; then stop_daemons; fi
    # -c: a fresh controller forgets jobs of earlier sessions (a test cluster keeps no history).
    pid_alive /run/slurmctld.pid || /usr/sbin/slurmctld -c || cannot "slurmctld did not start (see $logs/slurmctld.log)"
    pid_alive /run/slurmd.pid || /usr/sbin/slurmd || cannot "slurmd did not start (see $logs/slurmd.log)"
    wait_idle
    echo "slurm_local: node $node is up ($(nproc) CPUs, partition debug)"
    ;;
  down)
    [ "$(id -u)" = 0 ] || cannot "needs root"
    stop_daemons
    ;;
  status)
    sinfo
    ;;
  *)
    cannot "unknown action '$action' (up|down|status)"
    ;;
esac
