#!/usr/bin/env bash
# A short VRL3 learning run on door: the 25 human demos, stage 2 (30k updates by default), then stage 3 until a
# wall-clock budget runs out. The run's logs are left in OUT_DIR/run; a rerun of the same command resumes it.
#
#   benchmarks/learning_run.sh MIRROR OUT_DIR SECONDS [key=value ...]
#
# Environment: PYTHON (default python3), EPISODES (human demos, default 25).
# MIRROR is a folder with the hand_dapg layout (see docs/demos.md); key=value pairs override config/config.yaml
# (e.g. stage2_n_update=200 for a quick check). The default stage-1 encoder is none (random init): the authors'
# ImageNet checkpoint is a Google Drive download.
set -euo pipefail
mirror=$1 out=$2 seconds=$3
shift 3
python=${PYTHON:-python3} episodes=${EPISODES:-25}
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1

[ -d "$out/demos" ] || $python -m vrl3 demos --task door --source human --mirror "$mirror" \
    --episodes "$episodes" --out "$out/demos"
status=0
timeout --signal=INT "$seconds" $python -m vrl3 train --config config/config.yaml task=door seed=1 \
    demos="$out/demos" run_dir="$out/run" stage1.source=none num_demo="$episodes" "$@" || status=$?
# 124: the budget ran out (the run resumes from its last checkpoint when the command is repeated)
[ "$status" = 0 ] || [ "$status" = 124 ] || exit "$status"
echo "stage-2 evaluations:"; cat "$out/run/stage2/stage2_eval.csv"
echo "stage-3 evaluations:"; cat "$out/run/eval.csv"
