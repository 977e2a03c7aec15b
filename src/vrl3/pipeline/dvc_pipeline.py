"""dvc.yaml's stages for planned runs: the same DAG as the Snakefile, each stage listing the params it reads."""

from vrl3.demos.task_source import KITCHEN_DEMO_SOURCE
from vrl3.pipeline import plan
from vrl3.tasks import KitchenTask, get_task
from vrl3.train.stage_keys import RUN_KEYS, flatten, stage2_params, stage3_params

PARAMS_FILE = "params.yaml"


def param_keys(params: dict) -> list[str]:
    """Dotted leaf keys, e.g. agent.lr, as DVC's params lists name nested values."""
    # each stage gets one run's keys on its command line; params.yaml's values of them are not used
    return sorted(key for key in flatten(params) if key.split(".")[0] not in RUN_KEYS)


def _run_items(runs: list[plan.Run]) -> dict:
    items = {run.key: {"demos": run.demos, "run_dir": run.run_dir, "overrides": " ".join(run.overrides()),
                       **({"encoder": run.stage1_checkpoint} if run.stage1_checkpoint else {})}
             for run in runs}
    if any("encoder" in item for item in items.values()):
        # one `do` template lists ${item.encoder} for every run: a run with a random encoder (a variant with
        # stage1.source none) names its demos there again, a dependency it has anyway
        for item in items.values():
            item.setdefault("encoder", item["demos"])
    return items


def _demos_stages(config: dict, tasks: list[str]) -> dict:
    """`demos` renders the Adroit tasks' demos from `demo_source`; `kitchen_demos` the kitchen tasks' from Minari,
    whatever `demo_source` says (vrl3.demos.task_source, as the Snakemake rule does)."""
    kitchen = [task for task in tasks if isinstance(get_task(task), KitchenTask)]
    adroit = [task for task in tasks if task not in kitchen]
    stages = {"demos": _demos_stage(config, adroit, {})} if adroit else {}
    if kitchen:
        stages["kitchen_demos"] = _demos_stage(config, kitchen, KITCHEN_DEMO_SOURCE)
    return stages


def _demos_stage(config: dict, tasks: list[str], fixed: dict) -> dict:
    """One `vrl3 demos` stage per task, its options from plan.demos_options as the Snakemake rule's (which ones
    follow demo_source.source and whether a mirror is set, fixed here); each value is read from params.yaml
    (`${demo_source.<key>}`, a DVC param but the mirror, which says where the files lie) unless `fixed` gives it."""
    demo_source = {**config["demo_source"], **fixed}

    def spell(key: str) -> str:
        return str(fixed[key]) if key in fixed else f"${{demo_source.{key}}}"

    return {"foreach": tasks, "do": {
        "cmd": f"vrl3 demos --task ${{item}} {plan.demos_options(demo_source, spell)}"
               f" --image-size ${{image_size}} --shadow-size ${{shadow_size}}"
               f" --out {config['data_dir']}/demos/${{item}}",
        "params": [f"demo_source.{key}" for key in plan.demos_keys(demo_source)
                   if key not in fixed and key != "mirror"] + ["image_size", "shadow_size"],
        "outs": [f"{config['data_dir']}/demos/${{item}}"]}}


def _stage1_stage(config: dict, archs: list[str]) -> dict:
    out = f"{config['data_dir']}/stage1/${{item}}_checkpoint.pth.tar"
    source = config["stage1"]["source"]
    if source == "pretrain":
        workdir = f"{config['data_dir']}/stage1/pretrain-${{item}}"
        cmd = ("vrl3 pretrain --data ${stage1.imagenet} --arch ${item} --epochs ${stage1.epochs}"
               f" --batch-size ${{stage1.batch_size}} --workers ${{resources.stage1.cpus}} --out {workdir}"
               f" --publish {out}")
        params = ["stage1.source", "stage1.epochs", "stage1.batch_size"]
    else:
        mirror = " --mirror ${stage1.mirror}" if source == "mirror" else ""
        cmd = f"vrl3 encoder --source ${{stage1.source}} --arch ${{item}}{mirror} --out {out}"
        params = ["stage1.source"]
    return {"foreach": archs, "do": {"cmd": cmd, "params": params, "outs": [out]}}


def _writes_stage2_eval(cfg: dict) -> bool:
    return cfg["stage2_num_eval_episodes"] > 0 and cfg["stage2_n_update"] > 0


def _writes_train_log(cfg: dict) -> bool:
    # vrl3 train writes a train.csv row every train_log_every_steps agent steps, the first one after that many
    return cfg["num_train_frames"] // cfg["action_repeat"] > cfg["train_log_every_steps"]


def _train_stages(items: dict, keys2: list[str], keys3: list[str], stage2_eval: bool, train_log: bool) -> dict:
    has_encoder = any("encoder" in item for item in items.values())
    run = "${item.run_dir}"
    stage2 = {"cmd": f"vrl3 run-stage --stage 2 --config {PARAMS_FILE} ${{item.overrides}}",
              "deps": ["${item.demos}"] + (["${item.encoder}"] if has_encoder else []),
              "params": keys2,
              # persist: DVC must not delete what a resume needs; run-stage starts over when params changed
              "outs": [{f"{run}/stage2/{name}": {"persist": True}}
                       for name in ("checkpoints", "params.yaml", "workflow_stamp.json")],
              "metrics": [{f"{run}/stage2/metrics.json": {"cache": False}}]}
    if stage2_eval:
        stage2["plots"] = [{f"{run}/stage2/stage2_eval.csv": {"x": "update", "y": "success_rate",
                                                                "persist": True}}]
    stage3 = {"cmd": f"vrl3 run-stage --stage 3 --config {PARAMS_FILE} ${{item.overrides}}",
              "deps": [f"{run}/stage2/checkpoints"],
              "params": keys3,
              "outs": [{f"{run}/{name}": {"persist": True}}
                       for name in ("checkpoints", "params.yaml", "workflow_stamp.json")]
              + ([{f"{run}/train.csv": {"persist": True}}] if train_log else []),
              "metrics": [{f"{run}/metrics.json": {"cache": False}}],
              "plots": [{f"{run}/eval.csv": {"x": "frame", "y": "success_rate", "persist": True}}]}
    return {"stage2": {"foreach": items, "do": stage2}, "stage3": {"foreach": items, "do": stage3}}


def dvc_pipeline(config: dict, runs: list[plan.Run]) -> dict:
    results = config["results_dir"]
    stages = _demos_stages(config, sorted({run.task for run in runs}, key=config["tasks"].index))
    archs = plan.stage1_archs(runs)
    if archs:
        stages["stage1"] = _stage1_stage(config, archs)
    reference = runs[0].cfg  # the key lists are the same for every run: the schema fixes the keys
    keys2 = sorted(set(param_keys(stage2_params(reference))) | {"task_overrides"})
    keys3 = sorted(set(param_keys(stage3_params(reference))) | {"task_overrides"})
    # logs a tiny config never writes are left out: DVC fails on a declared output that does not appear
    stages |= _train_stages(_run_items(runs), keys2, keys3, all(_writes_stage2_eval(run.cfg) for run in runs),
                            all(_writes_train_log(run.cfg) for run in runs))
    stages["report"] = {"cmd": f"vrl3 report --runs {results}/runs --out {results} --config {PARAMS_FILE}",
                        "deps": [f"{run.run_dir}/eval.csv" for run in runs],
                        "params": ["variants"],
                        "outs": [f"{results}/figures", f"{results}/tables", f"{results}/report.md"]}
    return {"stages": stages}
