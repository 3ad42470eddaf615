"""Generated data for the three workloads (DESIGN §4): a sparse Markov token stream (llama), synthetic
10-class images (resnet) and a random teacher network (mlp).

numpy only (no torch): the generators return numpy arrays and ``workloads.py`` moves them to torch.
Determinism on every machine: every random draw comes from ``Generator(PCG64(key))`` with an integer
tuple ``key`` (never torch's RNG, never Python's ``hash()``):

- the TASK (Markov chain, class templates, teacher weights) from ``(data_seed, TASK)``;
- the training batch at step t from ``(data_seed, TRAIN, seed, t)``: a run is reproducible and
  different seeds see different samples;
- held-out eval batch i from ``(data_seed, EVAL, i)``: the same for every run, a disjoint stream.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Stream ids: the second entry of every generator key, so the streams never overlap.
TASK, TRAIN, EVAL, CALIB = 0, 1, 2, 3

Batch = tuple[np.ndarray, np.ndarray]


def rng(*key: int) -> np.random.Generator:
    """A generator seeded by an integer tuple (through numpy's SeedSequence: platform independent)."""
    return np.random.Generator(np.random.PCG64([int(k) for k in key]))


class Source:
    """Shared batch plumbing: subclasses implement ``_sample(gen, batch_size)`` and ``info()``."""

    kind = ""

    def __init__(self, batch_size: int, data_seed: int) -> None:
        self.batch_size = int(batch_size)
        self.data_seed = int(data_seed)

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        raise NotImplementedError

    def train_batch(self, seed: int, step: int) -> Batch:
        """The training batch of run seed ``seed`` at step ``step``."""
        return self._sample(rng(self.data_seed, TRAIN, seed, step), self.batch_size)

    def eval_batch(self, index: int) -> Batch:
        """Held-out batch ``index``: depends only on data_seed (identical for every run)."""
        return self._sample(rng(self.data_seed, EVAL, index), self.batch_size)

    def info(self) -> dict[str, Any]:
        raise NotImplementedError


# -- llama: sparse Markov chain with Zipfian popularity -----------------------------------------------


class MarkovTokens(Source):
    """A sparse Markov chain of order k over V tokens.

    The state is the last k tokens (V**k states). Each state has ``branching`` successor slots drawn
    with replacement from a Zipfian popularity over tokens (p(token of rank r) ∝ r**-zipf_exponent,
    ranks a random permutation), with flat-Dirichlet probabilities; slots that drew the same token are
    merged, so a state has at most ``branching`` distinct successors. Popular tokens follow many states,
    which makes the marginals Zipf-like; with k = 2 the next token depends on two previous tokens, so
    attention (not just the current token's embedding) is needed to reach the entropy rate.
    """

    kind = "markov"
    max_states = 1 << 22

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        batch_size: int,
        order: int = 2,
        branching: int = 8,
        zipf_exponent: float = 1.0,
        data_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, data_seed)
        self.V, self.k, self.b = int(vocab_size), int(order), int(branching)
        self.seq_len, self.zipf_exponent = int(seq_len), float(zipf_exponent)
        if self.k < 1 or self.b < 1 or self.V < 2 or self.seq_len < self.k:
            raise ValueError("markov: need vocab_size >= 2, order >= 1, branching >= 1, seq_len >= order")
        self.n_states = self.V**self.k
        if self.n_states > self.max_states:
            raise ValueError(f"markov: vocab_size**order = {self.n_states} states is too many")
        gen = rng(self.data_seed, TASK)
        popularity = np.arange(1, self.V + 1, dtype=np.float64) ** -self.zipf_exponent
        popularity = popularity[np.argsort(gen.permutation(self.V))]  # token -> popularity of its rank
        cdf = np.cumsum(popularity / popularity.sum())
        succ = np.searchsorted(cdf, gen.random((self.n_states, self.b)), side="right")
        self.succ = np.minimum(succ, self.V - 1).astype(np.int64)
        weights = -np.log1p(-gen.random((self.n_states, self.b)))  # Exp(1): flat Dirichlet after norm
        self.prob = _merge_duplicates(self.succ, weights / weights.sum(axis=1, keepdims=True))
        self.cum = np.cumsum(self.prob, axis=1)
        self.cum[:, -1] = 1.0  # u < 1 always lands in a slot; zero-probability slots are never chosen
        # Next state of (state, slot): drop the oldest token, append the new one.
        self.next_state = (np.arange(self.n_states)[:, None] % (self.V ** (self.k - 1))) * self.V + self.succ
        self.stationary = self._stationary()
        self.state_cdf = np.cumsum(self.stationary)
        self.state_cdf[-1] = 1.0
        plogp = np.where(self.prob > 0, self.prob * np.log(np.where(self.prob > 0, self.prob, 1.0)), 0.0)
        self.state_entropy = -plogp.sum(axis=1)
        self.entropy_rate = float(self.stationary @ self.state_entropy)

    def _stationary(self, tol: float = 1e-13, max_iter: int = 5000) -> np.ndarray:
        """Stationary distribution of the state chain by power iteration on the lazy chain
        (pi <- (pi + pi P) / 2: same fixed point, and it converges even if the chain is periodic)."""
        pi = np.full(self.n_states, 1.0 / self.n_states)
        flat_next = self.next_state.ravel()
        for _ in range(max_iter):
            step = np.bincount(flat_next, weights=(pi[:, None] * self.prob).ravel(), minlength=self.n_states)
            new = 0.5 * (pi + step)
            new /= new.sum()
            done = np.abs(new - pi).sum() < tol
            pi = new
            if done:
                break
        return pi

    def _marginal_entropies(self) -> list[float]:
        """H(t_0..t_j) for j < k under the stationary distribution of the state (t_0..t_{k-1})."""
        joint = self.stationary.reshape((self.V,) * self.k)
        return [_entropy(joint.sum(axis=tuple(range(j + 1, self.k))).ravel()) for j in range(self.k)]

    def optimal_loss(self) -> float:
        """Expected mean cross-entropy per target of the true chain on one batch row: the first
        k - 1 targets have less than k tokens of context, the rest cost the entropy rate."""
        h = self._marginal_entropies()
        first = sum(h[j] - h[j - 1] for j in range(1, self.k))
        return (first + (self.seq_len - self.k + 1) * self.entropy_rate) / self.seq_len

    def sample_tokens(self, gen: np.random.Generator, batch_size: int, length: int) -> np.ndarray:
        """``batch_size`` sequences of ``length`` tokens, the first state drawn from the stationary
        distribution. Vectorised over the batch; loops over positions only."""
        state = np.minimum(np.searchsorted(self.state_cdf, gen.random(batch_size), side="right"),
                           self.n_states - 1)
        u = gen.random((batch_size, length - self.k))
        tokens = np.empty((batch_size, length), dtype=np.int64)
        rest = state.copy()
        for j in range(self.k - 1, -1, -1):  # state digits, most significant = oldest token
            tokens[:, j] = rest % self.V
            rest //= self.V
        for j in range(self.k, length):
            slot = (u[:, j - self.k, None] >= self.cum[state]).sum(axis=1)
            tokens[:, j] = self.succ[state, slot]
            state = self.next_state[state, slot]
        return tokens

    def nll(self, tokens: np.ndarray) -> np.ndarray:
        """Per-transition negative log-likelihood under the true chain of every token with a full
        k-token context, shape (B, L - k). Its mean over a long stationary sample estimates the
        entropy rate."""
        tokens = np.asarray(tokens, dtype=np.int64)
        state = np.zeros(tokens.shape[0], dtype=np.int64)
        for j in range(self.k):
            state = state * self.V + tokens[:, j]
        out = np.empty((tokens.shape[0], tokens.shape[1] - self.k))
        for j in range(self.k, tokens.shape[1]):
            p = (self.prob[state] * (self.succ[state] == tokens[:, j, None])).sum(axis=1)
            out[:, j - self.k] = -np.log(p)
            state = (state % (self.V ** (self.k - 1))) * self.V + tokens[:, j]
        return out

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        tokens = self.sample_tokens(gen, batch_size, self.seq_len + 1)
        return tokens[:, :-1], tokens[:, 1:]

    def unigram_entropy(self) -> float:
        """Entropy of the stationary token marginal: the loss of a model that ignores context."""
        return _entropy(self.stationary.reshape(-1, self.V).sum(axis=0))

    def info(self) -> dict[str, Any]:
        """Losses in nats/token: entropy_rate (the floor), optimal_loss (the floor for a batch row,
        whose first k - 1 targets have short context), unigram_entropy (context ignored), uniform."""
        return {
            "kind": self.kind, "data_seed": self.data_seed, "vocab_size": self.V, "seq_len": self.seq_len,
            "markov_order": self.k, "markov_branching": self.b, "zipf_exponent": self.zipf_exponent,
            "states": self.n_states, "states_visited": int((self.stationary > 1e-12).sum()),
            "entropy_rate": self.entropy_rate, "optimal_loss": self.optimal_loss(),
            "unigram_entropy": self.unigram_entropy(), "uniform_loss": math.log(self.V),
        }


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _merge_duplicates(succ: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Give every (row, token) its total probability in its first slot and zero in the others."""
    n, b = succ.shape
    keys = np.arange(n)[:, None] * (int(succ.max()) + 1) + succ
    order = np.argsort(keys, axis=1, kind="stable")
    sk = np.take_along_axis(keys, order, axis=1)
    sp = np.take_along_axis(prob, order, axis=1)
    new_run = np.ones_like(sk, dtype=bool)
    new_run[:, 1:] = sk[:, 1:] != sk[:, :-1]
    run_id = np.cumsum(new_run.ravel()) - 1
    totals = np.bincount(run_id, weights=sp.ravel())
    merged_sorted = np.where(new_run.ravel(), totals[run_id], 0.0).reshape(n, b)
    out = np.empty_like(prob)
    np.put_along_axis(out, order, merged_sorted, axis=1)
    return out


# -- resnet: synthetic class-template images ----------------------------------------------------------


class TemplateImages(Source):
    """Synthetic ``num_classes``-way images of shape (3, S, S), float32.

    Each class has a colour (N(0, ``colour``²) per channel) and ``templates_per_class`` smooth random
    templates: Gaussian noise at resolution S/4 and S/2 upsampled bilinearly and summed (coarse shape
    plus finer texture), normalised to zero mean and unit RMS, plus the class colour. A sample picks a
    template of its class and applies a random circular shift of up to S/8 pixels, a horizontal flip, a
    contrast factor in [0.5, 1.5] and a colour offset, blends in a random other class's template
    (weight up to ``distractor``), adds a fresh smooth random field of RMS ``clutter``
    (class-independent background with the templates' texture) and Gaussian pixel noise of std
    ``noise``. Labels are uniform.

    Calibration (batch 128, 16x16, noise 1, depth-1 ResNet, AdamW lr 2^-7, 400 steps): the class
    colour is learnt within ~50 steps (loss ~0.8), the shapes over the following hundreds; eval loss
    ends near 0.4 at width 8 and 0.2 at width 32 (wider is better). Without clutter the loss was
    ~0.2 after 50 steps; without the colour cue nothing was learnt in the first 10 steps.
    """

    kind = "template-images"

    def __init__(
        self,
        image_size: int,
        num_classes: int,
        batch_size: int,
        noise: float = 1.0,
        templates_per_class: int = 2,
        distractor: float = 0.5,
        clutter: float = 1.0,
        colour: float = 1.0,
        data_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, data_seed)
        self.size, self.num_classes, self.noise = int(image_size), int(num_classes), float(noise)
        self.per_class, self.distractor = int(templates_per_class), float(distractor)
        self.clutter, self.colour = float(clutter), float(colour)
        s = self.size
        self._ups = [_bilinear_matrix(low, s) for low in (max(2, s // 4), max(2, s // 2))]
        gen_task = rng(self.data_seed, TASK)
        templates = self._smooth_fields(gen_task, self.num_classes * self.per_class)
        templates -= templates.mean(axis=(1, 2, 3), keepdims=True)
        # A class colour (shared by the class's templates) is an easy cue learnt in a few steps; the
        # shapes under clutter and noise are the slow part.
        colour = gen_task.normal(0.0, self.colour, (self.num_classes, 1, 3, 1, 1))
        templates = templates.reshape(self.num_classes, self.per_class, 3, s, s) + colour
        self.templates = templates.reshape(-1, 3, s, s)  # index = class * per_class + variant

    def _smooth_fields(self, gen: np.random.Generator, n: int) -> np.ndarray:
        """n smooth random (3, S, S) fields with unit RMS: noise at S/4 and S/2 upsampled and summed."""
        out = np.zeros((n, 3, self.size, self.size))
        for up in self._ups:
            low = up.shape[1]
            # Separable upsampling as stacked small matmuls: fastest of the forms we timed (a 3-operand
            # einsum was 10x slower; one big (n*3, low²) x (low², S²) BLAS call is slow on busy cores).
            out += up @ gen.standard_normal((n, 3, low, low)) @ up.T
        return out / np.sqrt((out**2).mean(axis=(1, 2, 3), keepdims=True))

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        s, c, n = self.size, self.num_classes, batch_size
        y = gen.integers(0, c, n)
        other = (y + gen.integers(1, c, n)) % c  # the distractor's class: never the label's
        variants = gen.integers(0, self.per_class, (n, 2))
        mix = gen.uniform(0.0, self.distractor, n)[:, None, None, None]
        contrast = gen.uniform(0.5, 1.5, n)[:, None, None, None]
        clean = contrast * (self.templates[y * self.per_class + variants[:, 0]]
                            + mix * self.templates[other * self.per_class + variants[:, 1]])
        # Random circular shift and horizontal flip as one gather with per-sample row/col indices.
        max_shift = max(1, s // 8)
        shifts = gen.integers(-max_shift, max_shift + 1, (n, 2))
        rows = (np.arange(s)[None, :] - shifts[:, :1]) % s
        cols = (np.arange(s)[None, :] - shifts[:, 1:]) % s
        cols = np.where((gen.random(n) < 0.5)[:, None], s - 1 - cols, cols)
        x = clean[np.arange(n)[:, None, None, None], np.arange(3)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
        x += gen.normal(0.0, 0.2, (n, 3, 1, 1))  # colour offset
        x += self.clutter * self._smooth_fields(gen, n)
        x += self.noise * gen.standard_normal((n, 3, s, s))
        return x.astype(np.float32), y.astype(np.int64)

    def info(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "data_seed": self.data_seed, "image_size": self.size,
            "num_classes": self.num_classes, "image_noise": self.noise, "templates_per_class": self.per_class,
            "distractor": self.distractor, "clutter": self.clutter, "class_colour": self.colour,
            "uniform_loss": math.log(self.num_classes),
        }


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation matrix (align-corners) for separable upsampling."""
    pos = np.linspace(0.0, n_in - 1, n_out)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - lo
    mat = np.zeros((n_out, n_in))
    mat[np.arange(n_out), lo] = 1.0 - frac
    mat[np.arange(n_out), lo + 1] = frac
    return mat


# -- mlp: random teacher network ----------------------------------------------------------------------


class TeacherRegression(Source):
    """Regression on a fixed random teacher ([Fan25]'s minimal synthetic setting is a regression
    with normalized linear layers; the teacher is our choice).

    x ~ N(0, I_in_dim); the teacher is ``teacher_depth`` tanh layers of width ``teacher_width``
    (weights N(0, gain²/fan_in), gain 1.5 so tanh is in its nonlinear range) and a linear output of
    ``out_dim``; its outputs are standardised to zero mean and unit variance per output (statistics on
    2**15 inputs from a calibration stream). Targets add N(0, label_noise²) noise, so the best
    achievable mean squared error is ``noise_floor = label_noise**2``.
    """

    kind = "teacher-regression"
    gain = 1.5
    calibration = 1 << 15

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        batch_size: int,
        teacher_width: int = 64,
        teacher_depth: int = 2,
        label_noise: float = 0.05,
        data_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, data_seed)
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.teacher_width, self.teacher_depth = int(teacher_width), int(teacher_depth)
        self.label_noise = float(label_noise)
        gen = rng(self.data_seed, TASK)
        dims = [self.in_dim] + [self.teacher_width] * self.teacher_depth
        pairs = zip(dims[:-1], dims[1:], strict=True)
        self.weights = [gen.normal(0.0, self.gain / math.sqrt(a), (a, b)) for a, b in pairs]
        self.readout = gen.normal(0.0, 1.0 / math.sqrt(dims[-1]), (dims[-1], self.out_dim))
        self.mean, self.std = np.zeros(self.out_dim), np.ones(self.out_dim)
        calib = self.teacher(rng(self.data_seed, CALIB).standard_normal((self.calibration, self.in_dim)))
        self.mean, self.std = calib.mean(axis=0), calib.std(axis=0)

    def teacher(self, x: np.ndarray) -> np.ndarray:
        """The noiseless, standardised teacher output.

        np.einsum (numpy's own loops), not ``@``: OpenBLAS threads took ~12 ms instead of ~0.7 ms per
        128-sample batch on a busy 2-core machine, and BLAS kernels differ between CPUs.
        """
        h = x
        for w in self.weights:
            h = np.tanh(np.einsum("bi,ij->bj", h, w))
        return (np.einsum("bi,ij->bj", h, self.readout) - self.mean) / self.std

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        x = gen.standard_normal((batch_size, self.in_dim))
        y = self.teacher(x) + self.label_noise * gen.standard_normal((batch_size, self.out_dim))
        return x.astype(np.float32), y.astype(np.float32)

    def info(self) -> dict[str, Any]:
        """noise_floor (= label_noise²) is the best achievable mean squared error."""
        return {
            "kind": self.kind, "data_seed": self.data_seed, "in_dim": self.in_dim, "out_dim": self.out_dim,
            "teacher_width": self.teacher_width, "teacher_depth": self.teacher_depth,
            "teacher_activation": "tanh", "teacher_gain": self.gain, "label_noise": self.label_noise,
            "noise_floor": self.label_noise**2, "target_variance": 1.0 + self.label_noise**2,
        }
