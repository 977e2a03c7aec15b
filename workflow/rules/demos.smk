# Demonstrations: `vrl3 demos` -> {data_dir}/demos/{task}/ (manifest.json + episodes/*.npz).

DEMO_SOURCE = config["demo_source"]


rule demos:
    output:
        directory(f"{config['data_dir']}/demos/{{task}}"),
    params:
        source=DEMO_SOURCE["source"],
        episodes=DEMO_SOURCE["episodes"],
        replay=DEMO_SOURCE["replay"],
        # where verified (sha256-checked) copies of the same files lie: pointing at another copy reruns nothing
        mirror=untracked(optional_arg("--mirror", DEMO_SOURCE["mirror"])),
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
