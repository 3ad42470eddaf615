"""The model contract (models/, workloads.py): roles and fan_ins, shapes, the readout multiplier,
causality and heads of the llama, the readout and sublayer hooks the trainer relies on."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from transferbench.config import resolve_run_config
from transferbench.roles import HIDDEN, INPUT, MATRIX_ROLES, OUTPUT, VECTOR, ParamSpec
from transferbench.workloads.build import build_model, build_workload

WIDTHS = {"llama": (32, 64), "resnet": (8, 16), "mlp": (32, 64)}
WORKLOADS = tuple(WIDTHS)


def cfg_for(workload: str, width: int, **extra) -> dict:
    over = {"workload": workload, "recipe": "standard", "width": width, "base_width": 32, "log2_lr": -6}
    if workload == "llama":
        over.update(seq_len=16, batch_size=2)
    if workload == "resnet":
        over.update(image_size=8, batch_size=4)
    return resolve_run_config({**over, **extra})


def model_at(workload: str, width: int, output_mult: float = 1.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg_for(workload, width), output_mult)


def sample_input(workload: str, cfg: dict) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    if workload == "llama":
        return torch.randint(0, cfg["vocab_size"], (2, cfg["seq_len"]), generator=gen)
    if workload == "resnet":
        return torch.randn(4, 3, cfg["image_size"], cfg["image_size"], generator=gen)
    return torch.randn(4, cfg["in_dim"], generator=gen)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_param_specs_cover_every_parameter_once(workload):
    for width in WIDTHS[workload]:
        model = model_at(workload, width)
        names = [n for n, _ in model.named_parameters()]
        specs = model.param_specs()
        assert len(names) == len(set(names)) == len(specs)
        assert set(specs) == set(names)
        params = dict(model.named_parameters())
        for name, spec in specs.items():
            if spec.role == VECTOR:
                assert params[name].dim() == 1, name
            else:
                assert params[name].dim() >= 2 and spec.fan_in >= 1, name
        roles = {s.role for s in specs.values()}
        assert roles == {INPUT, HIDDEN, OUTPUT, VECTOR}


@pytest.mark.parametrize("workload", WORKLOADS)
def test_fan_in_fixed_for_input_and_proportional_for_hidden_and_output(workload):
    small, large = WIDTHS[workload]
    s_specs, l_specs = model_at(workload, small).param_specs(), model_at(workload, large).param_specs()
    assert set(s_specs) == set(l_specs)  # same depth -> same parameter names
    for name, spec in s_specs.items():
        other = l_specs[name]
        assert spec.role == other.role, name
        if spec.role == INPUT:
            assert spec.fan_in == other.fan_in, name
        elif spec.role in (HIDDEN, OUTPUT):
            assert other.fan_in * small == spec.fan_in * large, name


@pytest.mark.parametrize("workload", WORKLOADS)
def test_fan_in_is_the_true_fan_in(workload):
    model = model_at(workload, WIDTHS[workload][0])
    params = dict(model.named_parameters())
    for name, spec in model.param_specs().items():
        if spec.role in MATRIX_ROLES:
            expected = 1 if isinstance(model.get_submodule(name.rsplit(".", 1)[0]), nn.Embedding) else (
                math.prod(params[name].shape[1:])
            )
            assert spec.fan_in == expected, name


def test_roles_of_named_layers():
    llama = model_at("llama", 32).param_specs()
    assert llama["embed.weight"].role == INPUT and llama["embed.weight"].fan_in == 1
    assert llama["head.weight"].role == OUTPUT
    for part in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"):
        assert llama[f"blocks.0.{part}.weight"].role == HIDDEN
    resnet = model_at("resnet", 8).param_specs()
    assert resnet["stem.0.weight"] == ParamSpec(INPUT, 27)
    assert resnet["fc.weight"].role == OUTPUT and resnet["fc.bias"].role == VECTOR
    assert resnet["stages.1.0.shortcut.0.weight"].role == HIDDEN
    mlp = model_at("mlp", 32).param_specs()
    assert mlp["inp.weight"].role == INPUT and mlp["head.weight"].role == OUTPUT
    assert mlp["layers.0.linear.weight"].role == HIDDEN


@pytest.mark.parametrize("workload", WORKLOADS)
def test_forward_shapes_and_vector_init(workload):
    for width in WIDTHS[workload]:
        cfg = cfg_for(workload, width)
        model = build_model(cfg)
        x = sample_input(workload, cfg)
        out = model(x)
        if workload == "llama":
            expected = (2, cfg["seq_len"], cfg["vocab_size"])
        else:
            expected = (4, cfg["num_classes"] if workload == "resnet" else cfg["out_dim"])
        assert out.shape == expected
        assert torch.isfinite(out).all()
        params = dict(model.named_parameters())
        for name, spec in model.param_specs().items():
            if spec.role == VECTOR:  # gains start at 1, biases at 0
                value = 0.0 if name.endswith("bias") else 1.0
                assert torch.all(params[name] == value), name


@pytest.mark.parametrize("workload", WORKLOADS)
def test_output_mult_scales_the_output_exactly(workload):
    cfg = cfg_for(workload, WIDTHS[workload][0])
    one = model_at(workload, cfg["width"], output_mult=1.0).eval()
    two = model_at(workload, cfg["width"], output_mult=2.0, seed=5).eval()
    two.load_state_dict(one.state_dict())
    x = sample_input(workload, cfg)
    with torch.no_grad():
        a, b = one(x), two(x)
    assert torch.equal(b, 2.0 * a)
    assert a.abs().max() > 0


@pytest.mark.parametrize("workload", WORKLOADS)
def test_build_is_deterministic_under_manual_seed(workload):
    a, b = model_at(workload, WIDTHS[workload][0]), model_at(workload, WIDTHS[workload][0])
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), n


def test_llama_is_causal():
    cfg = cfg_for("llama", 32)
    model = build_model(cfg).eval()
    x = sample_input("llama", cfg)
    t = 9
    y = x.clone()
    y[:, t] = (y[:, t] + 1) % cfg["vocab_size"]
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-6)
    assert (a[:, t:] - b[:, t:]).abs().amax(dim=-1).min() > 1e-4  # every later position sees token t


def test_llama_heads_scale_with_width_and_no_biases():
    for width in WIDTHS["llama"]:
        cfg = cfg_for("llama", width)
        model = build_model(cfg)
        assert model.heads == width // cfg["head_dim"]
        for block in model.blocks:
            assert block.attn.heads == width // cfg["head_dim"] and block.attn.head_dim == cfg["head_dim"]
            assert block.mlp.gate.out_features == cfg["ffn_ratio"] * width
        assert not any(n.endswith("bias") for n, _ in model.named_parameters())
        assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Linear))
        assert model.embed.weight.data_ptr() != model.head.weight.data_ptr()  # untied
        assert len(model.blocks) == cfg["depth"]


def test_resnet_stage_widths():
    model = model_at("resnet", 8)
    assert model.fc.in_features == 32
    assert [stage[0].branch.conv1.out_channels for stage in model.stages] == [8, 16, 32]
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("workload", WORKLOADS)
def test_readout_and_sublayer_hooks(workload):
    cfg = cfg_for(workload, WIDTHS[workload][0])
    model = build_model(cfg)
    specs = model.param_specs()
    params = dict(model.named_parameters())
    assert isinstance(model.readout, nn.Linear)
    out_names = [n for n, s in specs.items() if s.role == OUTPUT]
    assert len(out_names) == 1 and params[out_names[0]] is model.readout.weight
    subs = model.sublayers()
    expected = {"llama": 2 * cfg["depth"], "resnet": 3 * cfg["depth"], "mlp": cfg["depth"]}[workload]
    assert len(subs) == expected and len({n for n, _ in subs}) == expected
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook_for(name):
        def hook(_m, args, out):
            seen[name] = (args[0], out)

        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in subs]
    model(sample_input(workload, cfg))
    for h in handles:
        h.remove()
    assert set(seen) == {n for n, _ in subs}
    for name, (inp, out) in seen.items():
        assert isinstance(inp, torch.Tensor) and isinstance(out, torch.Tensor), name
        assert inp.float().pow(2).mean() > 0 and out.float().pow(2).mean() > 0, name
    if workload == "llama":  # attention/MLP inputs are the RMS-normed residual stream (gain 1 at init)
        for inp, _ in seen.values():
            torch.testing.assert_close(inp.pow(2).mean(-1), torch.ones(inp.shape[:-1]), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_build_workload_trains_one_step(workload):
    cfg = cfg_for(workload, WIDTHS[workload][0], eval_batches=2)
    torch.manual_seed(0)
    wl = build_workload(cfg, 1.0, torch.device("cpu"))
    assert len(wl.eval_batches) == 2
    x, y = wl.train_batch(0)
    per_batch = cfg["batch_size"] * (cfg["seq_len"] if workload == "llama" else 1)
    assert wl.items_per_batch == per_batch and x.shape[0] == cfg["batch_size"]
    assert wl.throughput_unit == ("tokens/s" if workload == "llama" else "samples/s")
    assert wl.data_info["kind"]
    opt = torch.optim.AdamW(wl.model.parameters(), lr=1e-3)
    loss = wl.loss_fn(wl.model(x), y)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in wl.model.parameters())


def test_lm_loss_is_mean_nats():
    cfg = cfg_for("llama", 32)
    torch.manual_seed(0)
    wl = build_workload(cfg, 1.0, torch.device("cpu"))
    x, y = wl.eval_batches[0]
    logits = torch.zeros(*y.shape, cfg["vocab_size"])
    assert float(wl.loss_fn(logits, y)) == pytest.approx(math.log(cfg["vocab_size"]), rel=1e-6)
