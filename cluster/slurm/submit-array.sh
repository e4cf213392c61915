#!/usr/bin/env bash
# Submits a sweep as two Slurm jobs: the coordinator (ranksweep-coordinator.sbatch) and WORKERS
# workers as a job array (ranksweep-workers.sbatch, --array=0-(WORKERS-1)) that start once the
# coordinator job runs. Extra arguments go to the workers' sbatch (e.g. --partition=gpu --time=4:00:00).
#
#   cluster/slurm/submit-array.sh SWEEP.yaml STATE_DIR WORKERS [sbatch options...]
set -euo pipefail
[[ $# -ge 3 && $3 =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 SWEEP.yaml STATE_DIR WORKERS [sbatch options for the workers...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
sweep=$1 state=$2 workers=$3
shift 3
mkdir -p "$state"
coord=$(sbatch --parsable "$here/ranksweep-coordinator.sbatch" "$sweep" "$state")
coord=${coord%%;*}
array=$(sbatch --parsable --array=0-$((workers - 1)) --dependency=after:"$coord" "$@" "$here/ranksweep-workers.sbatch" "$state")
echo "coordinator job $coord, worker array $array (0-$((workers - 1))); state $state"
echo "watch: ranksweep status --state-dir $state; add workers: sbatch --array=0-K $here/ranksweep-workers.sbatch $state"
