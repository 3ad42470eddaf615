"""llama's data: ``MarkovTokens``, a sparse Markov chain of order k with Zipfian token popularity,
with its exact entropy rate and the optimal loss of a batch row (and the helpers they need); and the
spec's source builders: ``markov_source`` (generated) and ``token_source`` (a prepared text corpus)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from transferbench.data.base import TASK, Batch, Source, rng

if TYPE_CHECKING:
    from transferbench.settings import RunConfig


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


def markov_source(cfg: RunConfig) -> Source:
    """The spec's ``generated`` source: the Markov token stream of a resolved run config."""
    own = cfg.settings
    return MarkovTokens(own.vocab_size, own.seq_len, cfg.batch_size, order=own.markov_order,
                        branching=own.markov_branching, zipf_exponent=own.zipf_exponent, data_seed=cfg.data_seed)


def token_source(cfg: RunConfig) -> Source:
    """The spec's ``tokens`` source: windows of a prepared text corpus (data kind ``text``)."""
    from transferbench.data.prepared import manifest_of
    from transferbench.data.tokens import TokenWindows

    return TokenWindows(manifest_of(cfg), cfg.settings.seq_len, int(cfg.batch_size), cfg.settings.vocab_size,
                        data_seed=int(cfg.data_seed))
