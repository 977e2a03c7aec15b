# Aggregation: `vrl3 report` reads every run's logs below {results_dir}/runs (<variant>/<task>/seed<N>/) and writes
# {results_dir}/figures/ (the paper's figures among them), {results_dir}/tables/ and {results_dir}/report.md, each
# replaced atomically (runs/ beside them is left alone).

import os

RESULTS = config["results_dir"]


rule report:
    input:
        [f"{run.run_dir}/metrics.json" for run in RUNS.values()],
    output:
        figures=report(directory(f"{RESULTS}/figures"), patterns=["{name}.png"], category="Figures",
                       caption="../report/results.rst"),
        tables=report(directory(f"{RESULTS}/tables"), patterns=["{name}.csv"], category="Tables",
                      caption="../report/results.rst"),
        report_md=f"{RESULTS}/report.md",
    params:
        runs=untracked(f"{RESULTS}/runs"),
        out=lambda wildcards, output: os.path.dirname(output.report_md),
        # the variants' definitions, for the figure map and the sensitivity settings
        config_file=untracked(RUN_CONFIG),
    log:
        f"{RESULTS}/logs/report.log",
    threads: step_threads("report")
    resources:
        **step_resources("report"),
    conda:
        CONDA_ENV
    shell:
        logged("vrl3 report --runs {params.runs} --out {params.out} --config {params.config_file}")


# The merged config every run was given, for the record and for `snakemake --report`.
rule resolved_config:
    output:
        report(f"{RESULTS}/config.yaml", category="Configuration", caption="../report/config.rst"),
    params:
        config=plan.canonical(config),
        config_file=untracked(RUN_CONFIG),
    log:
        f"{RESULTS}/logs/config.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "cp {params.config_file} {output} 2> {log}"
