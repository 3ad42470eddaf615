# One training job per sweep line (workload, recipe, width, wd, seed: every log2 lr in one process),
# or one per run with `sweep_per_job: false`. One rule per workload, because each workload has its
# own lr grid and the rule's outputs are the records of that grid.

LINE = "{recipe}/w{width}_wd{wd}_s{seed}"
JOB_BY_KEY = {
    (j.line if config.get("sweep_per_job", True) else f"{j.line}/lr{fmt(j.log2_lrs[0])}"): j for j in JOBS
}
GPU = {"gpu": 1} if config.get("device") == "cuda" else {}
# Start the longest jobs first so the last minutes are not one core busy and one idle (llama lines
# are the longest in every profile).
PRIORITY = {"llama": 2, "resnet": 1, "mlp": 0}

for _workload in WORKLOADS:
    _lrs = config["workloads"][_workload]["log2_lrs"]
    if config.get("sweep_per_job", True):

        rule:
            name:
                f"train_{_workload}"
            output:
                [f"{R}/runs/{_workload}/{LINE}/lr{fmt(x)}/record.json" for x in _lrs],
            log:
                f"{R}/logs/train/{_workload}/{LINE}.log",
            params:
                cmd=lambda wc, w=_workload: JOB_BY_KEY[
                    f"{w}/{wc.recipe}/w{wc.width}_wd{wc.wd}_s{wc.seed}"
                ].command(),
            wildcard_constraints:
                recipe=r"[A-Za-z0-9_.\-]+",
                width=r"\d+",
                wd=r"[0-9.e\-]+",
                seed=r"\d+",
            threads: int(config.get("threads", 1))
            priority: PRIORITY.get(_workload, 0)
            resources:
                **GPU,
            conda:
                "../envs/transferbench.yaml"
            shell:
                "{params.cmd} > {log} 2>&1"

    else:

        rule:
            name:
                f"train_{_workload}"
            output:
                f"{R}/runs/{_workload}/{LINE}/lr{{log2_lr}}/record.json",
            log:
                f"{R}/logs/train/{_workload}/{LINE}/lr{{log2_lr}}.log",
            params:
                cmd=lambda wc, w=_workload: JOB_BY_KEY[
                    f"{w}/{wc.recipe}/w{wc.width}_wd{wc.wd}_s{wc.seed}/lr{wc.log2_lr}"
                ].command(),
            wildcard_constraints:
                recipe=r"[A-Za-z0-9_.\-]+",
                width=r"\d+",
                wd=r"[0-9.e\-]+",
                seed=r"\d+",
                log2_lr=r"[0-9.e\-]+",
            threads: int(config.get("threads", 1))
            priority: PRIORITY.get(_workload, 0)
            resources:
                **GPU,
            conda:
                "../envs/transferbench.yaml"
            shell:
                "{params.cmd} > {log} 2>&1"
