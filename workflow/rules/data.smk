# One prepare_data job per entry of the profile's `data:` section: a text corpus (tokenized into shards)
# or CIFAR-10 (converted into uint8 arrays), each with a manifest that every train job verifies before
# it starts. The paths come from the results layout
# (transferbench/config/layout.py); the train jobs of a workload that names the entry
# wait for its manifest.

from transferbench.config import layout
from transferbench.config.data_grid import data_jobs

DATA = data_jobs(config)

if DATA:

    rule prepare_data:
        input:
            lambda wc: DATA[wc.name].inputs,
        output:
            layout.data_manifest(R, "{name}"),
        log:
            layout.log(R, "prepare_data", "{name}"),
        params:
            cmd=lambda wc: DATA[wc.name].command(),
        wildcard_constraints:
            name="|".join(re.escape(n) for n in DATA),
        conda:
            "../envs/transferbench.yaml"
        shell:
            "{params.cmd} > {log:q} 2>&1"
