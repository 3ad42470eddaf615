"""The shared learning-rate schedule: a multiplier on every parameter group's own peak lr.

Linear warmup over ``warmup_frac`` of the steps, then ``cosine``, ``linear`` or ``constant`` decay to
``min_lr_frac`` x peak at step ``steps``, just after the last update ([Kos25] use 10% linear warmup
then linear decay). The multiplier at step t is applied as group lr = group peak lr x schedule(t) x recipe factor(t).
"""

from __future__ import annotations

import math


def lr_multipliers(steps: int, schedule: str, warmup_frac: float, min_lr_frac: float) -> list[float]:
    """The schedule multiplier for every step 0 .. steps-1 (step t uses element t)."""
    warmup = int(round(warmup_frac * steps))
    out: list[float] = []
    for t in range(steps):
        if t < warmup:
            out.append((t + 1) / warmup)  # reaches 1 at the end of warmup; never 0 at step 0
            continue
        # progress reaches 1 at step `steps` (after the last update), so no step is wasted at lr 0
        progress = min(max((t - warmup) / max(steps - warmup, 1), 0.0), 1.0)
        if schedule == "constant":
            decay = 1.0
        elif schedule == "linear":
            decay = 1.0 - progress
        elif schedule == "cosine":
            decay = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            raise ValueError(f"schedule: unknown value {schedule!r}; known: cosine, linear, constant")
        out.append(min_lr_frac + (1.0 - min_lr_frac) * decay)
    return out
