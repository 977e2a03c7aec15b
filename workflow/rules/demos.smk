# Demonstrations: `vrl3 demos` -> {data_dir}/demos/{task}/ (manifest.json + episodes/*.npz).
# Adroit tasks use config demo_source; Franka Kitchen tasks always use Minari's D4RL/kitchen/*-v2 (from
# $MINARI_DATASETS_PATH or downloaded) re-rendered from recorded states (vrl3.demos.task_source, docs/kitchen.md).
# The options come from plan.demos_options, as dvc.yaml's: --replay only for recorded demos (human, minari), --mirror
# only for hand_dapg's files (human, expert); plan.check_demo_source stops a config that sets either otherwise.
from functools import partial

from vrl3.demos.task_source import demo_source_for

DEMO_SOURCE = config["demo_source"]
demo_source_of = partial(demo_source_for, demo_source=DEMO_SOURCE)  # task -> its demo_source


rule demos:
    output:
        directory(f"{config['data_dir']}/demos/{{task}}"),
    params:
        # the keys the command reads, recorded (a change reruns the job); replay None where not read (expert)
        source=lambda wildcards: demo_source_of(wildcards.task)["source"],
        episodes=DEMO_SOURCE["episodes"],
        replay=lambda wildcards: plan.demos_values(demo_source_of(wildcards.task)).get("replay"),
        image_size=config["image_size"],  # the runs render with both too (episodes.load_demos checks)
        shadow_size=config["shadow_size"],
        # the options themselves (functions of input, like untracked(): Snakemake does not record them); the mirror
        # says where verified (sha256-checked) copies of the same files lie: pointing at another copy reruns nothing
        options=lambda wildcards, input: plan.demos_options(demo_source_of(wildcards.task) | {"mirror": None}),
        mirror=lambda wildcards, input: optional_arg(
            "--mirror", plan.demos_values(demo_source_of(wildcards.task)).get("mirror")
        ),
    log:
        f"{config['data_dir']}/logs/demos-{{task}}.log",
    threads: step_threads("demos")
    resources:
        **step_resources("demos"),
    conda:
        CONDA_ENV
    shell:
        logged(
            "vrl3 demos --task {wildcards.task} {params.options} {params.mirror} --image-size {params.image_size}"
            " --shadow-size {params.shadow_size} --out {output}"
        )
