#!/bin/sh
# Start a throw-away single-node Slurm (Debian's slurm-wlm) on this machine, for testing the slurm
# executor for real:  sudo apt-get install -y slurm-wlm && sudo scripts/slurm-single-node.sh
# Then: BENCH_TEST_SLURM=1 .venv/bin/python -m pytest tests/test_runner_slurm.py
# Stop it with: scripts/slurm-single-node.sh stop
set -eu
STATE=${SLURM_TEST_DIR:-/tmp/bench-slurm}
if [ "${1:-start}" = stop ]; then
    pkill -F "$STATE/slurmd.pid" 2>/dev/null || true
    pkill -F "$STATE/slurmctld.pid" 2>/dev/null || true
    exit 0
fi
HOST=$(hostname)
CPUS=$(nproc)
mkdir -p "$STATE/state" "$STATE/spool" /etc/slurm /run/munge /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged || /usr/sbin/munged --force
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=bench
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld
slurmd
for i in $(seq 30); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then sinfo; exit 0; fi
    sleep 1
done
echo "slurm did not come up; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
exit 1
