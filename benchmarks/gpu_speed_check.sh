#!/usr/bin/env bash
# The GPU speed checks behind docs/benchmarks.md in one call (~9-10 minutes on one H100/H200; run it with a
# 10-minute limit; what a cut run measured stays in OUT_DIR):
# the update at each agent.precision (bf16 and fp32 also with agent.compile, bf16 also without cuDNN autotuning; the
# stage-3 update in bf16 + compile),
# acting at batch 1 and 8, stage 3 (throughput.py) with 1, 4 and 8 envs in bf16, with 8 envs in bf16 + compile (also
# with a 1024-texel shadow map, config shadow_size) and in fp32, 8 envs without updates (the envs' ceiling), the
# renderer alone in 1 and 8 processes and at smaller shadow maps (render_speed.py), and the CUDA-only tests.
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
bench_update() {  # name, options...
  local name=$1; shift
  run "$name" $python benchmarks/throughput_agent.py --updates 1000 --sync-every 0 --act-batch 1 "$@"
}
bench_stage3() {  # name, options...
  local name=$1; shift
  run "$name" $python benchmarks/throughput.py --stage2-updates 0 --stage3-frames 6000 "$@" --out "$out/$name.json"
}
# first what is new or decides the targets, then what earlier calls measured already (docs/benchmarks.md)
bench_update update_bf16_compile --precision bf16 --compile  # the warm-up's seconds are mostly compilation
bench_update update_stage3_bf16_compile --stage 3 --precision bf16 --compile --flops  # stage 3's update alone
bench_stage3 stage3_bf16_compile_envs8_shadow1024 --precision bf16 --compile --num-envs 8 --shadow-size 1024
run render_speed $python benchmarks/render_speed.py --task door --renders 400 --tiles 8 --processes 1 8 \
  --shadow-sizes 2048 1024 512 --out "$out/render_speed.json"
bench_stage3 stage3_bf16_compile_envs8 --precision bf16 --compile --num-envs 8
bench_stage3 stage3_envs8_no_updates_shadow1024 --precision bf16 --num-envs 8 --no-stage3-updates --shadow-size 1024
bench_update update_bf16 --precision bf16 --flops
bench_stage3 stage3_bf16_envs8 --precision bf16 --num-envs 8 --stage2-updates 300
bench_stage3 stage3_envs8_no_updates --precision bf16 --num-envs 8 --no-stage3-updates
run cuda_tests $python -m pytest -q -p no:cacheprovider tests/test_agent.py tests/test_agent_precision.py \
  tests/test_agent_compile.py -k "cuda or graph"
bench_update update_fp32 --precision fp32
bench_update update_tf32 --precision tf32
bench_stage3 stage3_fp32_envs8 --precision fp32 --num-envs 8
bench_update update_bf16_no_cudnn_benchmark --precision bf16 --no-cudnn-benchmark
run act_batch8 $python benchmarks/throughput_agent.py --updates 50 --precision bf16 --act-batch 8
bench_stage3 stage3_bf16_envs1 --precision bf16 --num-envs 1
bench_stage3 stage3_bf16_envs4 --precision bf16 --num-envs 4
bench_update update_fp32_compile --precision fp32 --compile
exit $status
