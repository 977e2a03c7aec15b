#!/usr/bin/env bash
# The GPU speed checks behind docs/benchmarks.md in one call (~5-8 minutes on one H100/H200; run it with a
# 9-minute limit):
# the CUDA-only tests, the update at each agent.precision (and fp32/bf16 with agent.compile), acting at batch 1 and 8,
# and stage 3 with 1, 4 and 8 envs.
#
#   benchmarks/gpu_speed_check.sh OUT_DIR
#
# Environment: PYTHON (default python3), MUJOCO_GL (default egl). Results: OUT_DIR/*.txt and OUT_DIR/*.json.
set -uo pipefail
out=$1
python=${PYTHON:-python3}
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1
mkdir -p "$out"
status=0
run() {  # run a command, keep its output in OUT_DIR/<name>.txt, go on after a failure
  local name=$1; shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$out/$name.txt" | grep -v '^ *"nvidia' || true
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "!! $name failed"; status=1; }
}

nvidia-smi -L || true
# quickest and most telling first: a run cut by a time limit still leaves what it measured in OUT_DIR
for precision in fp32 tf32 bf16; do
  run "update_$precision" $python benchmarks/throughput_agent.py --updates 1000 --sync-every 0 \
    --precision "$precision" --act-batch 1 --flops
done
run update_bf16_no_cudnn_benchmark $python benchmarks/throughput_agent.py --updates 1000 --sync-every 0 \
  --precision bf16 --no-cudnn-benchmark
run act_batch8 $python benchmarks/throughput_agent.py --updates 50 --precision bf16 --act-batch 8
for num_envs in 1 4 8; do
  run "stage3_bf16_envs$num_envs" $python benchmarks/throughput.py --stage2-updates 0 --stage3-frames 6000 \
    --num-envs "$num_envs" --precision bf16 --out "$out/stage3_bf16_envs$num_envs.json"
done
run stage3_fp32_envs8 $python benchmarks/throughput.py --stage2-updates 300 --stage3-frames 6000 --num-envs 8 \
  --out "$out/stage3_fp32_envs8.json"
run cuda_tests $python -m pytest -q -p no:cacheprovider tests/test_agent.py tests/test_agent_precision.py \
  tests/test_agent_compile.py -k "cuda or graph"
for precision in bf16 fp32; do  # the warm-up's seconds are mostly compilation
  run "update_${precision}_compile" $python benchmarks/throughput_agent.py --updates 500 --sync-every 0 \
    --precision "$precision" --compile --act-batch 1
done
exit $status
