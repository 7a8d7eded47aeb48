#!/usr/bin/env bash
# Install what the SLURM tests start (slurm-wlm, munge) on a Debian-like CI machine, as root.
# The tests themselves write no system file: each starts its own single-node cluster under
# a temporary folder (tests/helpers/slurm_cluster.py) and skips, or fails where CI=true,
# naming what is missing. Without root or apt-get this says why and installs nothing.
set -euo pipefail
need=(slurmctld slurmd sinfo squeue sbatch srun scontrol scancel munged munge unmunge)
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"
missing=()
for b in "${need[@]}"; do command -v "$b" >/dev/null || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
    echo "slurm_up: slurm-wlm and munge are installed"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "slurm_up: missing ${missing[*]}; installing slurm-wlm and munge needs root and apt-get (the SLURM tests skip, or fail where CI=true)"
    exit 0
fi
# keep the packages' own services from starting: the tests run their own daemons
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
fi
trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a
opts=(-qq -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600)
apt-get "${opts[@]}" update
apt-get "${opts[@]}" -y --no-install-recommends -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold install slurm-wlm munge
# a service that started anyway is stopped by the pid in its pid file
for f in /run/munge/munged.pid /run/slurmctld.pid /run/slurm/slurmctld.pid /run/slurmd.pid /run/slurm/slurmd.pid; do
    [ -f "$f" ] && kill "$(head -n1 "$f")" 2>/dev/null || true
done
echo "slurm_up: installed slurm-wlm and munge"
