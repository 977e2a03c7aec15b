# VRL3 reproduction: demos -> stage-1 encoder -> stage 2 -> stage 3 -> figures and tables.
#   snakemake --cores 4 all                                   the paper's configuration (config/config.yaml)
#   snakemake --cores 2 all --configfile config/smoke.yaml    tiny budgets, minutes on a laptop CPU
#   snakemake --profile workflow/profiles/slurm all           on a SLURM cluster
# Rules are thin: each calls one `vrl3` command; docs/workflow.md explains the layout, resuming and reruns.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


type_cli_config(config)
check_config(config)  # one line naming the offending key, before any job
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/demos.smk"
include: "workflow/rules/stage1.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output,
        rules.resolved_config.output,
    default_target: True
