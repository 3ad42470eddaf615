# One training job per sweep line (workload, recipe, width, wd: every seed and log2 lr in one process),
# or one per run with `sweep_per_job: false`. Every path comes from the results layout
# (transferbench/config/layout.py). With `lr_search: adaptive`
# a line reads the manifests of the next narrower width's line and of the tuning width's (its inputs).
#
# A job's only declared output is its manifest (job.json), which `train --manifest` writes once every
# run of the job has its record. The records themselves are written by train outside the declared
# outputs: Snakemake deletes the outputs of a failed job, and a line that crashed at its last lr would
# otherwise lose every finished run. The rerun skips the runs whose record has the same config hash.

import re

from transferbench.config import layout

JOB_BY_KEY = {j.key: j for j in JOBS}
# A job on CUDA asks for one unit of the `gpu` resource: `snakemake --cores N --resources gpu=K` runs at
# most K of them at once, and each claims a free GPU itself (devices.py; its --gpu-locks comes from config/grid.py).
# On SLURM the executor turns it into a GPU request. The device may be set per workload (its settings).
GPU_WORKLOADS = {j.workload for j in JOBS if "--gpu-locks" in j.args}
# One rule per workload, each with what its spec (transferbench/workloads/<name>/__init__.py) says:
# - priority: the longest jobs start first, so the last minutes are not one core busy and one idle;
# - the cluster resources of one of its jobs (slurm_partition, runtime in minutes, mem_mb), which a workflow
#   profile's set-resources for train_<workload> overrides (workflow/profiles/slurm/config.yaml);
# - on SLURM, SIGTERM ten minutes before the time limit, so that a large model's checkpoint is written in
#   time (the train process saves one on SIGTERM, docs/design.md §5; the profile's comments say more).
from transferbench import workloads

TRAIN_SIGNAL = "'--signal=TERM@600'"

for _workload in WORKLOADS:

    rule:
        name:
            f"train_{_workload}"
        input:
            lambda wc: JOB_BY_KEY[wc.job].needs,
        output:
            layout.job_manifest(R, "{job}"),
        log:
            layout.log(R, "train", "{job}"),
        params:
            cmd=lambda wc: JOB_BY_KEY[wc.job].command(),
        wildcard_constraints:
            # exactly this workload's jobs: a stale or mistyped target has no rule rather than a KeyError
            job="|".join(re.escape(j.key) for j in JOBS if j.workload == _workload),
        threads: int(config.get("threads", 1))
        priority: workloads.get(_workload).priority
        resources:
            **({"gpu": 1} if _workload in GPU_WORKLOADS else {}),
            **workloads.get(_workload).resources,
            slurm_extra=TRAIN_SIGNAL,
        conda:
            "../envs/transferbench.yaml"
        # params.cmd is a whole command (not quoted as one word): grid.Job quoted each of its arguments
        shell:
            "{params.cmd} > {log:q} 2>&1"
