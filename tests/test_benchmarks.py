"""The benchmark scripts run (tiny sizes, CPU): device time is scarce, so a broken script must show up here first."""

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def run_benchmark(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def update_gflop(stage: int) -> float:
    output = run_benchmark("benchmarks/throughput_agent.py", "--device", "cpu", "--updates", "1", "--warmup", "1",
                           "--episodes", "2", "--batch-size", "4", "--hidden-dim", "16", "--stage", str(stage),
                           "--flops", "--act-batch", "2")
    assert re.search(r"updates/s: [0-9.]+", output)
    assert re.search(r"act_batch at batch 2: [0-9.]+ ms", output)
    return float(re.search(r"work per update: ([0-9.]+) GFLOP", output).group(1))


def test_throughput_agent_counts_the_cql_critic_passes():
    stage2, stage3 = update_gflop(2), update_gflop(3)
    # both run the same encoder passes; stage 2 adds the critic on 10 random and 2 policy actions a sample
    assert stage2 > stage3 > 0


def test_throughput_stage2_and_stage3(tmp_path):
    out = tmp_path / "throughput.json"
    run_benchmark("benchmarks/throughput.py", "--device", "cpu", "--stage2-updates", "2", "--stage3-frames", "8",
                  "--batch-size", "4", "--hidden-dim", "16", "--out", str(out))
    results = json.loads(out.read_text())
    assert results["task"] == "door" and results["num_envs"] == 1
    assert results["stage2_updates_per_s"] > 0 and results["frames_per_s"] > 0


def test_env_speed(tmp_path):
    out = tmp_path / "env_speed.json"
    run_benchmark("benchmarks/env_speed.py", "--tasks", "door", "--steps", "5", "--renders", "2", "--agent-steps", "2",
                  "--out", str(out))
    assert "door" in out.read_text()


@pytest.mark.parametrize("script", ["gpu_speed_check.sh", "learning_run.sh"])
def test_shell_benchmarks_parse(script):
    result = subprocess.run(["bash", "-n", str(REPO_ROOT / "benchmarks" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_render_speed_tiles_match_single_renders(tmp_path):
    out = tmp_path / "render_speed.json"
    run_benchmark("benchmarks/render_speed.py", "--renders", "2", "--tiles", "2", "--processes", "1", "2",
                  "--shadow-sizes", "4096", "256", "--out", str(out))
    one, two = json.loads(out.read_text())
    assert (one["processes"], two["processes"]) == (1, 2)
    for result in (one, two):
        assert result["render_ms"] > 0 and result["no_shadow_ms"] > 0 and result["tiled_ms"] > 0
        # a view drawn into its tile of a wider framebuffer is the same picture as the view rendered alone
        assert result["tile_max_diff"] <= 2
    assert two["renders_per_s_all_processes"] == pytest.approx(2000 / two["render_ms"])
    # the scene's own map (4096) renders the same pixels again; a 256-texel map moves shadow edges
    assert one["shadow_4096_diff"] == 0 and 0 < one["shadow_256_diff"] < 5 and one["shadow_256_ms"] > 0
