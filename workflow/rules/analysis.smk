# records -> runs table -> metrics -> plots and leaderboard. Pandas/seaborn only: no torch here.

T = f"{R}/tables"


rule aggregate:
    input:
        [r for j in JOBS for r in j.records],
    output:
        runs=f"{T}/runs.csv",
        coord=f"{T}/coord_check.csv",
    log:
        f"{R}/logs/aggregate.log",
    shell:
        "python -m transferbench aggregate --out-dir {T} {input} > {log} 2>&1"


rule metrics:
    input:
        runs=f"{T}/runs.csv",
    output:
        optima=f"{T}/optima.csv",
        transfer=f"{T}/transfer.csv",
        optima_wd=f"{T}/optima_wd.csv",
    log:
        f"{R}/logs/metrics.log",
    shell:
        "python -m transferbench metrics --tables {T} > {log} 2>&1"


rule plots:
    input:
        rules.aggregate.output,
        rules.metrics.output,
    output:
        [
            report(
                f"{R}/plots/{kind}_{w}.png",
                caption=f"../report/{kind}.rst",
                category="Plots",
                subcategory=w,
            )
            for kind in PLOT_KINDS
            for w in WORKLOADS
        ],
    log:
        f"{R}/logs/plots.log",
    shell:
        "python -m transferbench plots --tables {T} --out-dir {R}/plots > {log} 2>&1"


rule leaderboard:
    input:
        rules.aggregate.output,
        rules.metrics.output,
    output:
        md=report(f"{R}/leaderboard.md", caption="../report/leaderboard.rst", category="Leaderboard"),
        csv=f"{R}/leaderboard.csv",
        html=report(f"{R}/leaderboard.html", caption="../report/leaderboard.rst", category="Leaderboard"),
    log:
        f"{R}/logs/leaderboard.log",
    shell:
        "python -m transferbench leaderboard --tables {T} --out {R}/leaderboard > {log} 2>&1"
