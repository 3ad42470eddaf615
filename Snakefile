"""transferbench: the whole benchmark as one DAG.

    snakemake --cores all                                  # tiny profile (config/config.yaml)
    snakemake --cores all --configfile config/smoke.yaml   # CI-sized
    snakemake --report report.html                         # self-contained report with captions

config -> schema check + registry check -> grid of train jobs -> aggregate -> metrics -> plots,
leaderboard. Every job runs `python -m transferbench <stage>`; `snakemake -p` prints the command.
"""

import sys

from snakemake.utils import min_version, validate

min_version("8.0")

sys.path.insert(0, workflow.basedir)  # a source checkout works even before `pip install -e .`

from transferbench.config import layout  # noqa: E402
from transferbench.config.grid import invariance_jobs, jobs  # noqa: E402
from transferbench.config.profile import SCHEMA, check_profile, command_line_lists, schema_problem  # noqa: E402
from transferbench.config.run import ConfigError  # noqa: E402
from transferbench.recipes.instance import parse as parse_recipe  # noqa: E402


# The default profile is loaded only when no --configfile is given. Snakemake would otherwise merge a
# --configfile into it key by key, so a profile that lists only `llama` would silently inherit the
# default's resnet and mlp sweeps. To change a few keys of a profile, pass it first and your overrides
# after it (`--configfile config/config.yaml mine.yaml`) or use `--config key=value`.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Our own schema check first: it names a mistyped key ("did you mean 'widths'?") where Snakemake's
# validate() only says that the correct key is missing; validate() then fills in the schema's defaults.
# (A YAML syntax error in a --configfile is reported by Snakemake before this file runs, without the
# file or line: `transferbench grid --configfile FILE` names both.)
# `--config seeds=[0]` reaches us as ['0']: numbers typed on the command line are numbers.
config.update(command_line_lists(config))
_problem = schema_problem(config)
if _problem:
    raise WorkflowError(f"invalid config: {_problem}")
validate(config, str(SCHEMA))  # the schema ships inside the package
try:
    check_profile(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None

R = config.get("results_dir", "results")
T, P, B = layout.tables(R), layout.plots(R), layout.leaderboard(R)  # the results layout (transferbench/config/layout.py)
SWEEP = jobs(config)
MANIFESTS = [j.manifest for j in SWEEP]  # every sweep job's declared output: the records of runs.csv
STUDY = invariance_jobs(config)  # [Fan25]'s invariance study: its own table and plot (invariance.py)
JOBS = SWEEP + STUDY
WORKLOADS = list(config["workloads"])
PLOT_KINDS = ["lr_sweep", "optimal_lr", "transferred", "singular_values", "coord_check"]
# wd_exponent.png when some workload sweeps three or more wd-power[p=...] instances (wd_exponent.py)
_P_SWEEPS = [
    [r for r in (spec.get("recipes") or config["recipes"]) if parse_recipe(r)[0] == "wd-power" and "p" in parse_recipe(r)[1]]
    for spec in config["workloads"].values()
]
# wd_heatmap_<workload>.png, optimal_wd_<workload>.png where a workload sweeps two or more wds (plots_wd.py)
WD_WORKLOADS = [
    w for w, spec in config["workloads"].items()
    if len([x for x in (spec.get("wds") or []) if x > 0]) >= 2 or len(spec.get("log2_wds") or []) >= 2
]
EXPONENT_PLOTS = ["sv_exponent", "sv_law"] + (["wd_exponent"] if any(len(p) >= 3 for p in _P_SWEEPS) else [])


# The report's front page: what was run and how to read it (rendered with the profile).
report: "workflow/report/workflow.rst"


include: "workflow/rules/train.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/analysis.smk"


# The train jobs are targets too: a fresh clone holds the committed tables and leaderboard but no
# records, and without this Snakemake would only redraw the committed tables instead of training.
rule all:
    input:
        MANIFESTS,
        expand(f"{P}/{{kind}}_{{workload}}.png", kind=PLOT_KINDS, workload=WORKLOADS),
        expand(f"{P}/{{kind}}.png", kind=EXPONENT_PLOTS),
        [f"{T}/invariance.csv", f"{P}/invariance_{config['invariance']['workload']}.png"] if STUDY else [],
        multiext(B, ".md", ".csv", ".html"),
        layout.findings(R),
        layout.profile(R),
    default_target: True
