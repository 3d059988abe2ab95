#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for trying and testing hydra/launcher=slurm:
#   scripts/local_slurm.sh start    install slurm-wlm and munge if missing, write the config, start the daemons
#   scripts/local_slurm.sh stop     stop the daemons this script started, remove the config it wrote
#   scripts/local_slurm.sh status   sinfo and squeue
# Needs root (apt-get, the daemons). The state (config, spool, logs, pid files) lives in $LOCAL_SLURM_DIR
# (default /tmp/vae-local-slurm); /etc/slurm/slurm.conf is written only when there is none, so that sinfo,
# sbatch and squeue find the cluster, and only a config this script wrote is ever removed.
set -euo pipefail

STATE="${LOCAL_SLURM_DIR:-/tmp/vae-local-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by scripts/local_slurm.sh"
HOST="$(hostname -s)"

say() { echo "local_slurm: $*" >&2; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        say "needs root (it installs slurm-wlm and munge with apt-get and starts their daemons); run it with sudo"
        exit 1
    fi
}

install_missing() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        return
    fi
    say "installing slurm-wlm and munge (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; }
}

write_config() {
    mkdir -p "$STATE"/{state,spool,log} /etc/slurm
    local cpus mem_mb
    cpus="$(nproc)"
    mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"  # a bit under the machine's
    cat >"$STATE/slurm.conf" <<EOF
$MARK: a one-node cluster of this machine
ClusterName=local
SlurmctldHost=$HOST
SlurmUser=root
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldLogFile=$STATE/log/ctld.log
SlurmdLogFile=$STATE/log/d.log
SlurmctldPidFile=$STATE/ctld.pid
SlurmdPidFile=$STATE/d.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
AuthType=auth/munge
# A requeued job waits for its credential to expire before it starts again (120 s by default)
AuthInfo=cred_expire=5
# and the scheduler looks at held jobs every few seconds, not every 30 (backfill) or 60 (main loop)
SchedulerParameters=sched_interval=2,bf_interval=2
NodeName=$HOST CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    if [ -e "$CONF" ] && ! grep -q "^$MARK" "$CONF"; then
        say "$CONF exists and was not written by this script: it is left as it is, and a cluster is not started"
        exit 1
    fi
    cp "$STATE/slurm.conf" "$CONF"
}

start_munge() {
    if pgrep -x munged >/dev/null; then
        return  # someone else's: used, never stopped
    fi
    [ -s /etc/munge/munge.key ] || mungekey -c >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    rm -f /run/munge/munged.pid
    su -s /bin/sh munge -c munged
    for _ in $(seq 50); do  # the daemon forks: its pid file says which process it became
        [ -s /run/munge/munged.pid ] && break
        sleep 0.1
    done
    cp /run/munge/munged.pid "$STATE/munged.started"
}

start() {
    need_root
    if sinfo -h >/dev/null 2>&1; then
        say "a cluster answers already:"; sinfo
        return
    fi
    install_missing
    write_config
    start_munge
    slurmctld
    slurmd
    for _ in $(seq 60); do
        state="$(sinfo -h -o %t 2>/dev/null | head -1 || true)"
        case "$state" in
            idle*) say "node $HOST idle ($(nproc) CPUs); state in $STATE"; return ;;
            down*|drain*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    say "the node did not become idle within 60 s; logs in $STATE/log"
    exit 1
}

stop() {
    for pidfile in "$STATE/d.pid" "$STATE/ctld.pid" "$STATE/munged.started"; do
        if [ -s "$pidfile" ]; then
            pid="$(cat "$pidfile")"
            if kill "$pid" 2>/dev/null; then
                for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true  # still there after 10 s (a slurmd without munge hangs)
                say "stopped process $pid ($(basename "$pidfile"))"
            fi
            rm -f "$pidfile"
        fi
    done
    if [ -e "$CONF" ] && grep -q "^$MARK" "$CONF"; then
        rm -f "$CONF"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo && squeue ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
