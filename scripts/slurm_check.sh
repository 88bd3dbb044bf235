#!/usr/bin/env bash
# slurm_check.sh — sdc augment --shard auto on a real Slurm: starts a one-node
# cluster on localhost (Debian's slurm-wlm daemons and munge, no cgroups:
# proctrack/linuxproc, task/none), submits the augmentation as an array job
# of 4 with `sbatch --wait`, merges the shard manifests and checks that the
# result equals an unsharded run of the same command byte for byte.
#
#   bash scripts/slurm_check.sh [SDC_BIN]      (make slurm-check)
#
# Needs root (it installs slurmctld, slurmd, slurm-client and munge with
# apt-get when they are missing, and runs the daemons); everything else lives
# in a temporary folder that is removed at the end, daemons stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
SDC=$(readlink -f "${1:-build/sdc}")
[ -x "$SDC" ] || { echo "slurm_check: $SDC not built (make first)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "slurm_check: needs root (daemons, apt-get)" >&2; exit 1; }
start=$(date +%s)

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm_check: installing slurmctld slurmd slurm-client munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi

W=$(mktemp -d /tmp/sdc-slurm-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

# munge: its own key, socket and state under $W.
mkdir -p "$W/munge" "$W/spool" "$W/state" "$W/log"
chmod 700 "$W/munge"
dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$W/munge/munge.key"
munged --force --key-file="$W/munge/munge.key" --socket="$W/munge/sock" \
    --pid-file="$W/munge/pid" --log-file="$W/log/munge.log" --seed-file="$W/munge/seed"
pids+=("$(cat "$W/munge/pid")")

cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
host=$(hostname -s)
cat >"$W/slurm.conf" <<EOF
ClusterName=sdccheck
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$W/munge/sock
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPort=16817
SlurmdPort=16818
SlurmctldPidFile=$W/state/slurmctld.pid
SlurmdPidFile=$W/state/slurmd.pid
SlurmdSpoolDir=$W/spool
StateSaveLocation=$W/state
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
export SLURM_CONF="$W/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 50); do [ -s "$W/state/slurmctld.pid" ] && [ -s "$W/state/slurmd.pid" ] && break; sleep 0.2; done
pids+=("$(cat "$W/state/slurmctld.pid")" "$(cat "$W/state/slurmd.pid")")
for _ in $(seq 50); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 0.2; done
sinfo -h -o "%P %D %T" | grep -q idle || { cat "$W/log/"*.log >&2; echo "slurm_check: the node did not come up" >&2; exit 1; }

# A small dataset and the tiny test model: boomerang with a list of strengths.
for c in cat dog; do
    mkdir -p "$W/data/$c"
    for i in 0 1 2; do cp tests/fixtures/clip_images/landscape.png "$W/data/$c/img$i.png"; done
done
args=("$W/data" --model "$PWD/tests/fixtures/tiny/diffusers" --vocab "$PWD/weights/bpe_simple_vocab_16e6.txt.gz"
      --method boomerang --per-image 2 --strength 0.4,0.7 --size 64 --steps 4 -q)
"$SDC" augment "${args[@]}" --out "$W/whole"

# The array: 4 tasks, each its shard (SLURM_ARRAY_TASK_ID / _COUNT).
{ echo '#!/bin/bash'; printf '%q ' "$SDC" augment "${args[@]}" --out "$W/sharded" --shard auto; echo; } >"$W/cmd.sh"
sbatch --wait --array=0-3 --output="$W/log/task-%a.out" --job-name=sdc-augment \
    --cpus-per-task=1 --chdir="$W" "$W/cmd.sh" </dev/null >/dev/null ||
    { cat "$W/log/"task-*.out >&2; echo "slurm_check: an array task failed" >&2; exit 1; }
"$SDC" manifest merge --out "$W/sharded"

# Equal byte for byte: every image, plan.json and the merged manifest (the
# shard logs and locks exist only in the sharded folder).
diff -r -x 'manifest.shard-*' -x '.sdc-*.lock' "$W/whole" "$W/sharded" ||
    { echo "slurm_check: the merged array output differs from the unsharded run" >&2; exit 1; }
n=$(find "$W/sharded" -name '*.png' | wc -l)
echo "slurm_check: ok: a 4-task array (sbatch --wait) merged equals the unsharded run ($n images)," \
     "$(($(date +%s) - start)) s"
