# Stage-1 encoder -> {data_dir}/stage1/{arch}_checkpoint.pth.tar. stage1.source: fetch (the authors' Google
# Drive), mirror (a local copy), pretrain (`vrl3 pretrain` on an ImageFolder), none (no rule: random init).

STAGE1 = config["stage1"]
STAGE1_DIR = f"{config['data_dir']}/stage1"

try:
    plan.check_stage1(config)
except UserError as error:
    stop(error)


if STAGE1["source"] in ("fetch", "mirror"):

    rule stage1_encoder:
        output:
            f"{STAGE1_DIR}/{{arch}}_checkpoint.pth.tar",
        params:
            source=STAGE1["source"],
            mirror=untracked(optional_arg("--mirror", STAGE1["mirror"])),
        log:
            f"{config['data_dir']}/logs/stage1-{{arch}}.log",
        threads: step_threads("stage1")
        resources:
            **step_resources("stage1"),
        conda:
            CONDA_ENV
        shell:
            logged("vrl3 encoder --source {params.source} --arch {wildcards.arch} {params.mirror} --out {output}")


if STAGE1["source"] == "pretrain":

    # `vrl3 pretrain` resumes from its own checkpoint in pretrain-{arch}/, which no rule declares (Snakemake
    # deletes declared outputs before rerunning a job); --publish copies the finished file to the output.
    rule stage1_pretrain:
        output:
            f"{STAGE1_DIR}/{{arch}}_checkpoint.pth.tar",
        params:
            epochs=STAGE1["epochs"],
            batch_size=STAGE1["batch_size"],
            imagenet=untracked(shlex.quote(str(STAGE1["imagenet"]))),
            workdir=lambda wildcards: f"{STAGE1_DIR}/pretrain-{wildcards.arch}",
        log:
            f"{config['data_dir']}/logs/stage1-{{arch}}.log",
        threads: step_threads("stage1")
        resources:
            **step_resources("stage1"),
        conda:
            CONDA_ENV
        shell:
            logged("vrl3 pretrain --data {params.imagenet} --arch {wildcards.arch} --epochs {params.epochs}"
                   " --batch-size {params.batch_size} --workers {threads} --out {params.workdir} --publish {output}")
