# Demonstrations: `vrl3 demos` -> {data_dir}/demos/{task}/ (manifest.json + episodes/*.npz).
# Adroit tasks use config demo_source; Franka Kitchen tasks always use Minari's D4RL/kitchen/*-v2 (from
# $MINARI_DATASETS_PATH or downloaded) re-rendered from recorded states (vrl3.demos.task_source, docs/kitchen.md).
from functools import partial

from vrl3.demos.task_source import demo_source_for

DEMO_SOURCE = config["demo_source"]
demo_source_of = partial(demo_source_for, demo_source=DEMO_SOURCE)  # task -> its demo_source


rule demos:
    output:
        directory(f"{config['data_dir']}/demos/{{task}}"),
    params:
        source=lambda wildcards: demo_source_of(wildcards.task)["source"],
        episodes=DEMO_SOURCE["episodes"],
        replay=lambda wildcards: demo_source_of(wildcards.task)["replay"],
        # where verified (sha256-checked) copies of the same files lie: pointing at another copy reruns nothing
        # (a function of input, like untracked(): Snakemake does not record it)
        mirror=lambda wildcards, input: optional_arg("--mirror", demo_source_of(wildcards.task)["mirror"]),
    log:
        f"{config['data_dir']}/logs/demos-{{task}}.log",
    threads: step_threads("demos")
    resources:
        **step_resources("demos"),
    conda:
        CONDA_ENV
    shell:
        "vrl3 demos --task {wildcards.task} --source {params.source} --episodes {params.episodes}"
        " --replay {params.replay} {params.mirror} --out {output} > {log} 2>&1"
