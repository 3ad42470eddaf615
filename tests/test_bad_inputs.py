"""Bad inputs, one table: every row exits non-zero with one line naming the flag, key, file or value,
never a traceback, and leaves a record computed earlier byte-identical (issue "Nothing lost, nothing
fake"). Most rows fail before torch loads, so the whole file takes well under a minute."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from transferbench.config import ConfigError, resolve_run_config
from transferbench.config.profile import check_profile, load_profile
from transferbench.runlock import run_lock

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
#: The one valid run of this file (a real 5-step mlp run, made once by the `root` fixture).
RUN = {"--workload": "mlp", "--recipe": "mup", "--width": "32", "--base-width": "16", "--log2-lr": "-6",
       "--steps": "5", "--batch-size": "8", "--eval-batches": "1", "--out": "<run>"}
RUN_DIR = Path("results/runs/mlp/mup/w32_wd0.1_s0/lr-6")
WR = "warmup-replacement"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


Spec = dict[str, Any] | Callable[[dict], None] | str | None

#: (id, input, what stderr must name). A dict changes flags of RUN (None drops one) for `train`; a
#: callable mutates the smoke profile and a string is a profile's text, for `grid` (None: no file).
#: <run> is the directory of the existing record (a bad input that slipped through would overwrite
#: it), <file> a regular file, <ro> a read-only directory, <profile> the profile's file name.
ROWS: list[tuple[str, Spec, str]] = [
    ("log2_lr-2000", {"--log2-lr": "2000"}, "log2_lr: must be in [-64, 16], got 2000"),
    ("log2_lr-127", {"--log2-lr": "127"}, "log2_lr: must be in [-64, 16], got 127"),
    ("log2_lr-nan", {"--log2-lr": "nan"}, "log2_lr: must be finite, got nan"),
    ("log2_lr-inf", {"--log2-lr": "inf"}, "log2_lr: must be finite"),
    ("log2_lr-abc", {"--log2-lr": "abc"}, "argument --log2-lr: invalid float value: 'abc'"),
    ("log2_lr-twice", {"--log2-lr": ["-6", "-6"], "--out": "<run>/../lr{log2_lr}"}, "log2_lr: -6 given twice"),
    ("device-cuda", {"--device": "cuda"}, "device: 'cuda' requested"),
    ("option-unclosed", {"--recipe": WR, "--recipe-option": "frac=[unclosed"}, "recipe_options.frac: cannot parse"),
    ("option-null", {"--recipe": WR, "--recipe-option": "frac=null"}, "recipe_options.frac"),
    ("option-abc", {"--recipe": WR, "--recipe-option": "frac=abc"}, "recipe_options.frac"),
    ("option-unknown", {"--recipe-option": "bogus=1"}, "recipe_options.bogus"),
    ("option-no-equals", {"--recipe-option": "frac"}, "recipe_options: expected KEY=VALUE"),
    ("option-date", {"--recipe": WR, "--recipe-option": "frac=2024-01-01"}, "recipe_options.frac"),
    # the recipe options of 0.2 that became the shared base model's run settings say so
    ("option-moved-readout_init", {"--recipe-option": "readout_init=zero"},
     "recipe_options.readout_init: recipe 'mup': unknown option 'readout_init' (known: none); the readout init is "
     "the run setting readout_init"),
    ("option-moved-vector_wd", {"--recipe": "wd-power[p=0.5,vector_wd=none]"},
     "recipe_options.vector_wd: recipe 'wd-power': unknown option 'vector_wd' (known: p); weight decay on input and "
     "output is the run setting decay_roles"),
    ("readout_init-fan_in", {"--readout-init": "fan_in"}, "readout_init: unknown value 'fan_in'; known: normal, zero"),
    ("decay_roles-order", {"--decay-roles": "output,input"}, "decay_roles: unknown value 'output,input'; known: "
     "input,hidden,output, input,hidden, input,output, hidden,output, input, hidden, output, none"),
    ("adam_beta1-2", {"--adam-beta1": "2"}, "adam_beta1: must be in [0, 1), got 2"),
    ("adam_beta2-1", {"--adam-beta2": "1"}, "adam_beta2: must be in [0, 1)"),
    ("adam_eps-0", {"--adam-eps": "0"}, "adam_eps: must be > 0, got 0"),
    ("head_dim-0", {"--workload": "llama", "--head-dim": "0"}, "head_dim: must be >= 1, got 0"),
    ("sigma-neg", {"--sigma": "-1"}, "sigma: must be > 0, got -1"),
    ("sigma-0", {"--sigma": "0"}, "sigma: must be > 0, got 0"),
    ("width-0", {"--width": "0"}, "width: must be >= 1, got 0"),
    ("width-missing", {"--width": None}, "required: --width"),
    ("batch_size-neg", {"--batch-size": "-3"}, "batch_size: must be >= 1, got -3"),
    ("steps-abc", {"--steps": "abc"}, "steps: expected int, got 'abc'"),
    ("seed-neg", {"--seed": "-1"}, "seed: must be >= 0"),
    ("threads-0", {"--threads": "0"}, "threads: must be >= 1"),
    ("wd-neg", {"--wd": "-1"}, "wd: must be >= 0"),
    ("warmup_frac-1.5", {"--warmup-frac": "1.5"}, "warmup_frac: must be in [0, 1), got 1.5"),
    ("label_noise-neg", {"--label-noise": "-0.1"}, "label_noise: must be >= 0"),
    ("vocab_size-1", {"--workload": "llama", "--vocab-size": "1"}, "vocab_size: must be >= 2"),
    ("num_classes-1", {"--workload": "resnet", "--num-classes": "1"}, "num_classes: must be >= 2"),
    ("seq_len-for-mlp", {"--seq-len": "8"}, "seq_len: unknown setting for workload 'mlp'"),
    ("schedule-nope", {"--schedule": "nope"}, "schedule: unknown value 'nope'"),
    ("workload-nope", {"--workload": "nope"}, "workload: unknown value 'nope'"),
    ("recipe-nope", {"--recipe": "nope"}, "recipe: unknown name 'nope'"),
    ("out-field", {"--out": "x{lr}"}, "out: field {lr}"),
    ("out-template", {"--out": "x{"}, "out: 'x{' is not a valid template"),
    ("out-is-file", {"--out": "<file>"}, "out: <file> exists and is not a directory"),
    ("out-under-file", {"--out": "<file>/run"}, "out: cannot write to <file>/run"),
    ("out-read-only", {"--out": "<ro>/run"}, "out: cannot write to <ro>/run"),
    ("other-hash", {"--steps": "6"}, "refusing to replace it (--replace replaces records of another config"),
    ("grid-yaml-syntax", "profile: bad\nrecipes: [standard\nseeds: [0]\n", "<profile>:3:6: YAML syntax error"),
    ("grid-repeated-key", "recipes: [mup]\nrecipes: [standard]\n", "<profile>:2:1: YAML syntax error: repeated key"),
    ("grid-empty", "", "<profile>: empty profile"),
    ("grid-missing", None, "<profile>: cannot read"),
    ("grid-typo", lambda c: c["workloads"]["mlp"].update(widhts=c["workloads"]["mlp"].pop("widths")),
     "<profile>: workloads.mlp: additional property 'widhts' is not allowed (did you mean 'widths'?)"),
    ("grid-log2_lrs-127", lambda c: c["workloads"]["mlp"].update(log2_lrs=[-8, 127]),
     "workloads.mlp.log2_lrs: must be in [-64, 16], got 127"),
    ("grid-seeds-twice", lambda c: c["workloads"]["mlp"].update(seeds=[0, 0]), "workloads.mlp.seeds"),
    ("grid-recipe-nope", lambda c: c.update(recipes=["standard", "mu-p"]), "recipes: unknown recipe 'mu-p'"),
    ("grid-workload-recipe-nope", lambda c: c["workloads"]["mlp"].update(recipes=["mu-p"]),
     "workloads.mlp.recipes: unknown recipe 'mu-p'"),
    ("grid-settings-width", lambda c: c["workloads"]["mlp"]["settings"].update(width=8),
     "workloads.mlp.settings.width: set by the grid"),
    ("grid-settings-bool", lambda c: c["workloads"]["mlp"]["settings"].update(steps=True),
     "workloads.mlp.settings.steps: expected int, got True"),
    ("grid-option", lambda c: c.update(recipe_options={WR: {"frac": "abc"}}), f"recipe_options.{WR}.frac"),
    ("grid-decay_roles", lambda c: c["workloads"]["mlp"]["settings"].update(decay_roles="all"),
     "workloads.mlp.settings.decay_roles: unknown value 'all'"),
]
MARKS = {
    "device-cuda": pytest.mark.skipif(_has_cuda(), reason="CUDA is available here"),
    "out-read-only": pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions"),
}


def cli(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transferbench", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def train_argv(changes: dict[str, Any]) -> list[str]:
    flags = {**RUN, **changes}
    argv = ["train"]
    for flag, value in flags.items():
        if value is not None:
            argv += [flag, *(value if isinstance(value, list) else [value])]
    return argv


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below results/ with its bytes: nothing may be removed, changed or added."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "results").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    res = cli(train_argv({"--out": str(root / RUN_DIR)}), cwd=root, timeout=300)
    assert res.returncode == 0, res.stderr
    (root / "a-file").write_text("a file, not a directory\n")
    (root / "read-only").mkdir()
    (root / "read-only").chmod(0o555)
    return root


@pytest.mark.parametrize(("spec", "expected"),
                         [pytest.param(s, e, id=i, marks=MARKS.get(i, ())) for i, s, e in ROWS])
def test_bad_input_is_one_line_and_loses_nothing(
    root: Path, spec: Spec, expected: str, request: pytest.FixtureRequest
) -> None:
    places = {"<run>": str(root / RUN_DIR), "<file>": str(root / "a-file"), "<ro>": str(root / "read-only"),
              "<profile>": f"{request.node.callspec.id}.yaml"}

    def fill(text: str) -> str:
        for key, value in places.items():
            text = text.replace(key, value)
        return text

    if isinstance(spec, dict):
        argv = [fill(a) for a in train_argv({k: v if not isinstance(v, str) else fill(v) for k, v in spec.items()})]
    else:
        profile = root / places["<profile>"]
        if callable(spec):
            bad = copy.deepcopy({**SMOKE, "results_dir": str(root / "results")})
            spec(bad)
            profile.write_text(yaml.safe_dump(bad))
        elif spec is not None:
            profile.write_text(spec)
        argv = ["grid", "--configfile", profile.name]
    before = snapshot(root)
    res = cli(argv, cwd=root)
    assert res.returncode == 2, res.stderr
    assert fill(expected) in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert snapshot(root) == before


def test_force_replaces_a_record_of_another_config(root: Path, tmp_path: Path) -> None:
    copy_dir = tmp_path / "run"
    shutil.copytree(root / RUN_DIR, copy_dir)
    old = yaml.safe_load((copy_dir / "record.json").read_text())["config_hash"]
    before = snapshot(root)
    res = cli(train_argv({"--steps": "6", "--out": str(copy_dir), "--force": []}), cwd=root, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "--force: replacing" in res.stderr
    new = yaml.safe_load((copy_dir / "record.json").read_text())
    assert new["config_hash"] != old and new["config"]["steps"] == 6
    umask = os.umask(0)
    os.umask(umask)
    assert (copy_dir / "record.json").stat().st_mode & 0o777 == 0o644 & ~umask  # not mkstemp's 0600
    assert sorted(p.name for p in copy_dir.iterdir()) == ["record.json"]  # no lock or probe left behind
    assert snapshot(root) == before


def test_replace_retrains_only_what_changed(root: Path, tmp_path: Path) -> None:
    """--replace (a profile's `replace: true`) replaces a record of another config and skips a record of
    the same config, so a DAG rerun after a profile edit retrains what changed and nothing else."""
    line = tmp_path / "line"
    shutil.copytree(root / RUN_DIR, line / "lr-6")  # steps 5: changes to steps 6 below
    argv = train_argv({"--steps": "6", "--log2-lr": ["-6", "-7"], "--out": str(line / "lr{log2_lr}"),
                       "--replace": []})
    res = cli(argv, cwd=root, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "--replace: the record has config hash" in res.stderr
    assert yaml.safe_load((line / "lr-6" / "record.json").read_text())["config"]["steps"] == 6
    again = (line / "lr-7" / "record.json").read_bytes()
    res = cli(argv, cwd=root, timeout=300)
    assert res.returncode == 0 and res.stderr.count("already done") == 2, res.stderr
    assert (line / "lr-7" / "record.json").read_bytes() == again


def test_a_run_locked_by_another_process_is_refused(root: Path) -> None:
    before = snapshot(root)
    with run_lock(root / RUN_DIR):
        res = cli(train_argv({"--steps": "6", "--out": str(root / RUN_DIR)}), cwd=root)
    assert res.returncode == 2, res.stderr
    assert str(root / RUN_DIR) in res.stderr and f"pid {os.getpid()}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (root / RUN_DIR / ".lock").exists()
    assert snapshot(root) == before


def test_ctrl_c_is_one_line_and_exit_130(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "long"
    before = snapshot(root)
    # A background job of a non-interactive shell (`cmd &`, e.g. CI run under nohup) ignores SIGINT and its
    # children inherit that; Python then keeps it ignored. The child gets the default, as a terminal's would.
    proc = subprocess.Popen([sys.executable, "-m", "transferbench", *train_argv({"--steps": "100000",
                             "--out": str(out)})], cwd=root, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (out / ".lock").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the lock is taken after every check, just before training starts
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (out / "record.json").exists() and not (out / ".lock").exists()
    assert snapshot(root) == before


def test_every_numeric_setting_has_bounds_and_help() -> None:
    from transferbench.settings import all_settings

    for key, (setting, _) in all_settings().items():
        assert setting.help, key
        if setting.type in (int, float):
            assert setting.bound is not None, key


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: c["workloads"]["mlp"].update(seeds=[0, 0]), "workloads.mlp.seeds: repeated value 0"),
    (lambda c: c.update(seeds=[1, 1]), "seeds: repeated value 1"),
    (lambda c: c["workloads"]["mlp"].update(widths=[16, 16]), "workloads.mlp.widths: repeated value 16"),
    (lambda c: c["workloads"]["mlp"].update(wds=[0.1, 0.10000001]), "name the same run directory"),
    (lambda c: c["workloads"]["mlp"].update(recipes=["mup", "mup"]), "workloads.mlp.recipes: repeated"),
    (lambda c: c["workloads"]["llama"]["settings"].update(sigma=float("nan")), "settings.sigma: must be finite"),
    (lambda c: c["workloads"]["mlp"].update(width_settings={99: {"steps": 5}}),
     "workloads.mlp.width_settings: width 99 is not in widths"),
    (lambda c: c["workloads"]["mlp"].update(width_settings={32: {"steps": 0}}), "workloads.mlp.*steps: must be >= 1"),
    (lambda c: c["workloads"]["llama"].update(data="nowhere"),
     "workloads.llama.data: 'nowhere' is not an entry of data: \\(known: repo-text\\)"),
    (lambda c: c["workloads"]["resnet"].update(data="repo-text"),
     "workloads.resnet.data: 'repo-text' is text data, which resnet cannot read \\(its sources: generated, cifar10\\)"),
    (lambda c: c["workloads"]["llama"]["settings"].update(data_path="x"),
     "workloads.llama.settings: data_source and data_path are set by data: 'repo-text'"),
    (lambda c: c["data"]["repo-text"].update(files=None), "data.repo-text: a text corpus needs files or dataset"),
    (lambda c: c["workloads"]["mlp"].update(recipes=["mup", "wd-power[p=0.5]", "wd-power[p=.50]"]),
     "workloads.mlp.recipes: 'wd-power\\[p=.50\\]' is the same recipe instance as 'wd-power\\[p=0.5\\]'"),
    (lambda c: c["workloads"]["mlp"].update(recipes=["wd-power[p=x]"]), "p='x': must be a number"),
    (lambda c: c["workloads"]["mlp"].update(recipes=["wd-power[p]"]), "'p' is not key=value"),
    (lambda c: c.update(recipe_options={"wd-power[p=0.5]": {"p": 0.25}}),
     "recipe_options.p: 0.25 conflicts with the recipe instance 'wd-power\\[p=0.5\\]'"),
    (lambda c: c["invariance"].update(workload="resnet", recipe="mup") or c["workloads"].pop("resnet"),
     "invariance.workload: 'resnet' is not one of the profile's workloads"),
    (lambda c: c["invariance"].update(recipe="mu-p"), "invariance.recipe: unknown recipe 'mu-p'"),
    (lambda c: c["invariance"].update(widths=[0]), "invariance: width: must be >= 1, got 0"),
])
def test_check_profile_without_the_schema(mutate, message: str) -> None:
    """What the Snakefile calls after its own schema step, and a wheel (no schema file) relies on."""
    bad = copy.deepcopy(SMOKE)
    mutate(bad)
    with pytest.raises(ConfigError, match=message):
        check_profile(bad)


@pytest.mark.parametrize("name", [p.stem for p in sorted((REPO / "config").glob("*.yaml"))])
def test_the_shipped_profiles_load(name: str) -> None:
    assert load_profile(REPO / "config" / f"{name}.yaml")["workloads"]


def test_numbers_typed_on_the_command_line_are_numbers() -> None:
    from transferbench.config.profile import command_line_lists

    assert command_line_lists({"seeds": ["0", "1"], "recipes": ["mup"], "x": 1}) == {"seeds": [0, 1]}


def test_markov_state_limit_is_the_generators() -> None:
    """The workload spec checks the token stream's size at parse time with its own copy of the limit."""
    from transferbench.workloads.llama import MARKOV_MAX_STATES
    from transferbench.workloads.llama.data import MarkovTokens

    assert MARKOV_MAX_STATES == MarkovTokens.max_states
    with pytest.raises(ConfigError, match="vocab_size: 4096\\*\\*markov_order=2"):
        resolve_run_config({"workload": "llama", "recipe": "mup", "width": 64, "base_width": 64, "log2_lr": -6,
                            "vocab_size": 4096})
