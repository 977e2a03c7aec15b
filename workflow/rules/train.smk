# Stage 2 (offline RL on the demos) and stage 3 (online RL) of every (variant, task, seed) run, one rule each.
#
# Each job calls `vrl3 run-stage --stage N`, i.e. `vrl3 train --stage N` on the merged config plus the run's keys; it
# resumes an interrupted stage and starts a stage over when its parameters or inputs changed. A variant's overrides
# (config `variants`, vrl3.pipeline.variants) come first among the run's key=value words. The declared outputs
# are the metrics files written when a stage is done: Snakemake deletes a job's outputs before rerunning it and
# after it fails, so the checkpoints and CSV logs a resume needs must not be outputs.
#
# params hold the keys each stage reads (vrl3.train.stage_keys): a changed stage-3 key reruns stage 3 only; a
# changed stage-2 key reruns stages 2 and 3.

RUN_CONFIG, RUNS = plan_runs(config)
RUN_ROOT = f"{config['results_dir']}/runs/{{variant}}/{{task}}/seed{{seed}}"
LOG_ROOT = f"{config['results_dir']}/logs/{{variant}}/{{task}}/seed{{seed}}"


wildcard_constraints:
    variant="|".join(sorted({variant for variant, _, _ in RUNS})),
    task="|".join(sorted({task for _, task, _ in RUNS})),
    seed=r"\d+",


rule stage2:
    input:
        unpack(stage2_inputs),
    output:
        f"{RUN_ROOT}/stage2/metrics.json",
    params:
        stage2_keys=lambda wildcards: run_of(wildcards).stage2_params(),
        overrides=run_overrides,
        config_file=untracked(RUN_CONFIG),
    log:
        f"{LOG_ROOT}/stage2.log",
    threads: step_threads("stage2")
    resources:
        **step_resources("stage2"),
    conda:
        CONDA_ENV
    shell:
        logged("vrl3 run-stage --stage 2 --config {params.config_file} {params.overrides}")


rule stage3:
    input:
        rules.stage2.output,
    output:
        f"{RUN_ROOT}/metrics.json",
    params:
        stage3_keys=lambda wildcards: run_of(wildcards).stage3_params(),
        overrides=run_overrides,
        config_file=untracked(RUN_CONFIG),
    log:
        f"{LOG_ROOT}/stage3.log",
    threads: step_threads("stage3")
    resources:
        **step_resources("stage3"),
    conda:
        CONDA_ENV
    shell:
        logged("vrl3 run-stage --stage 3 --config {params.config_file} {params.overrides}")
