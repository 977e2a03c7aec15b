# Aggregation: `vrl3 report` reads every run's eval.csv below {results_dir}/runs and writes
# {results_dir}/report/ (figures/, tables/, report.md). The report command replaces its output folder as a whole,
# atomically, so that folder is a sibling of runs/, not results_dir itself.

RESULTS = config["results_dir"]


rule report:
    input:
        expand(f"{RESULTS}/runs/{{task}}/seed{{seed}}/metrics.json", zip,
               task=[task for task, _ in RUNS], seed=[seed for _, seed in RUNS]),
    output:
        report(directory(f"{RESULTS}/report"), patterns=["figures/{name}.png", "tables/{name}.csv"],
               category="Results", caption="../report/results.rst"),
    params:
        runs=untracked(f"{RESULTS}/runs"),
    log:
        f"{RESULTS}/logs/report.log",
    threads: step_threads("report")
    resources:
        **step_resources("report"),
    conda:
        CONDA_ENV
    shell:
        "vrl3 report --runs {params.runs} --out {output} > {log} 2>&1"


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
