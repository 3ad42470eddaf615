import json
import os

# records -> runs table -> metrics -> plots and leaderboard. Pandas/seaborn only: no torch here.

ENV = "../envs/transferbench.yaml"


# The resolved profile, schema defaults filled in: what `python -m transferbench bundle` records as the sweep.
# A changed profile is a changed param, and Snakemake rewrites it.
rule profile:
    output:
        layout.profile(R),
    log:
        layout.log(R, "profile"),
    params:
        profile=json.dumps(config, sort_keys=True),
    conda:
        ENV
    shell:
        "python -m transferbench profile --json {params.profile:q} --out {output:q} > {log:q} 2>&1"


# The records are not declared files (see train.smk): aggregate waits for the manifests of every
# job and reads the record paths from them (an adaptive line chooses its lrs as it runs).
rule aggregate:
    input:
        MANIFESTS,
    output:
        runs=report(f"{T}/runs.csv", caption="../report/tables.rst", category="Tables"),
        coord=f"{T}/coord_check.csv",
        data_info=f"{T}/data_info.csv",
        bad=f"{T}/bad_records.csv",
    log:
        layout.log(R, "aggregate"),
    params:
        tables=lambda w, output: os.path.dirname(output.runs),
    conda:
        ENV
    shell:
        "python -m transferbench aggregate --out-dir {params.tables:q} {input:q} > {log:q} 2>&1"


rule metrics:
    input:
        runs=f"{T}/runs.csv",
    output:
        optima=report(f"{T}/optima.csv", caption="../report/tables.rst", category="Tables"),
        transfer=report(f"{T}/transfer.csv", caption="../report/tables.rst", category="Tables"),
        optima_wd=f"{T}/optima_wd.csv",
        wd_exponent=f"{T}/wd_exponent.csv",
        wd_exponent_best=f"{T}/wd_exponent_best.csv",
        seed_scores=report(f"{T}/seed_scores.csv", caption="../report/tables.rst", category="Tables"),
        regime=report(f"{T}/regime.csv", caption="../report/tables.rst", category="Tables"),
        seed_scores_joint=f"{T}/seed_scores_joint.csv",
        sv_law=report(f"{T}/sv_law.csv", caption="../report/sv_law.rst", category="Weight-decay exponent"),
    log:
        layout.log(R, "metrics"),
    params:
        tables=lambda w, input: os.path.dirname(input.runs),
    conda:
        ENV
    shell:
        "python -m transferbench metrics --tables {params.tables:q} > {log:q} 2>&1"


rule plots:
    input:
        rules.aggregate.output,
        rules.metrics.output,
    output:
        [
            report(
                f"{P}/{kind}_{w}.png",
                caption=f"../report/{kind}.rst",
                category="Plots",
                subcategory=w,
            )
            for kind in PLOT_KINDS
            for w in WORKLOADS
        ],
        [
            report(f"{P}/{kind}.png", caption=f"../report/{kind}.rst", category="Weight-decay exponent")
            for kind in EXPONENT_PLOTS
        ],
        [
            report(f"{P}/{kind}_{w}.png", caption=f"../report/{kind}.rst", category="Weight-decay transfer")
            for kind in ("wd_heatmap", "optimal_wd")
            for w in WD_WORKLOADS
        ],
    log:
        layout.log(R, "plots"),
    params:
        tables=lambda w, input: os.path.dirname(input[0]),
        out_dir=lambda w, output: os.path.dirname(output[0]),
    conda:
        ENV
    shell:
        "python -m transferbench plots --tables {params.tables:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule leaderboard:
    input:
        rules.aggregate.output,
        rules.metrics.output,
    output:
        md=report(f"{B}.md", caption="../report/leaderboard.rst", category="Leaderboard"),
        csv=f"{B}.csv",
        html=report(f"{B}.html", caption="../report/leaderboard.rst", category="Leaderboard"),
    log:
        layout.log(R, "leaderboard"),
    params:
        tables=lambda w, input: os.path.dirname(input[0]),
        stem=lambda w, output: os.path.splitext(output.md)[0],
        profile=config.get("profile", ""),
    conda:
        ENV
    shell:
        "python -m transferbench leaderboard --tables {params.tables:q} --out {params.stem:q} "
        "--profile {params.profile:q} > {log:q} 2>&1"


# What the results say, every number formatted from a table cell (findings.py), and the papers' claims tested.
rule findings:
    input:
        board=f"{B}.csv",
        tables=rules.metrics.output,
    output:
        claims=f"{T}/claims.csv",
        findings=report(layout.findings(R), caption="../report/leaderboard.rst", category="Leaderboard"),
    log:
        layout.log(R, "findings"),
    params:
        tables=lambda w, output: os.path.dirname(output.claims),
        profile=config.get("profile", ""),
    conda:
        ENV
    shell:
        "python -m transferbench findings --tables {params.tables:q} --leaderboard {input.board:q} "
        "--out {output.findings:q} --profile {params.profile:q} > {log:q} 2>&1"


# [Fan25]'s invariance study (profile key `invariance`): its runs stay out of runs.csv.
if STUDY:

    rule invariance:
        input:
            [j.manifest for j in STUDY],
        output:
            table=report(f"{T}/invariance.csv", caption="../report/invariance.rst", category="Weight-decay exponent"),
            fit=f"{T}/invariance_fit.csv",
            plot=report(
                f"{P}/invariance_{config['invariance']['workload']}.png",
                caption="../report/invariance.rst",
                category="Weight-decay exponent",
            ),
        log:
            layout.log(R, "invariance"),
        params:
            log2_lr=config["invariance"]["log2_lr"],
            wd=config["invariance"]["wd"],
            plots=lambda w, output: os.path.dirname(output.plot),
            tables=lambda w, output: os.path.dirname(output.table),
        conda:
            ENV
        shell:
            "python -m transferbench invariance --log2-lr {params.log2_lr} --wd {params.wd} --tables {params.tables:q} "
            "--plots {params.plots:q} {input:q} > {log:q} 2>&1"
