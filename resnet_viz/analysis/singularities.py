"""Signatures of the three singularities that skip connections break.

Orhan & Pitkow 2018, "Skip Connections Eliminate Singularities" (ICLR, arXiv:1701.09175):
- elimination: a hidden unit that is never active, so its incoming weights do nothing
  (``dead_unit_fraction``);
- overlap: two units of a layer with the same incoming weights, interchangeable
  (``overlap``);
- linear dependence: units whose activities are linearly dependent, so the layer spans
  fewer dimensions than it has units (``participation_ratio``).
Each makes the Hessian of the loss degenerate, so the fraction of its near-zero eigenvalues
(``hessian_spectrum``, ``near_zero_fraction``) summarises them all; their Fig. 1 and §3.

A "hidden layer" here is one activation module (ReLU, tanh, ...) outside shortcuts and
gates, in forward order — in a ``Net`` the ``act`` modules of every branch, the CNN's
post-addition activations, and the head's activation. Its units are features (MLP) or
channels (CNN: every position of every example counts as one sample).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp, vmap

_ACT_TYPES = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.GELU, nn.ELU, nn.SiLU)
_WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def hidden_activations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Activation modules of the main path, in forward order (shortcuts, gates excluded)."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, _ACT_TYPES) and ".shortcut" not in n and ".gate" not in n]


def hidden_weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Weight layers whose rows are hidden units' incoming weights (the output layer dropped).

    ``Net.weight_layers()`` when the model has it (main path only, so a plain net and its
    residual twin list the same layers); otherwise every Linear / Conv in module order.
    """
    if hasattr(model, "weight_layers"):
        layers = list(model.weight_layers())
    else:
        layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _WEIGHT_TYPES)]
    return layers[:-1]


@torch.no_grad()
def collect_activations(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Each hidden layer's output as a (samples, units) matrix, eval mode, via forward hooks.

    Conv maps (B, C, H, W) become (B·H·W, C): a channel is one unit seen at many places.
    Hooks are removed and the mode restored even if the forward pass fails.
    """
    acts = hidden_activations(model)
    store: dict[str, torch.Tensor] = {}
    handles = []
    was_training = model.training
    try:
        for name, mod in acts:
            handles.append(mod.register_forward_hook(_saver(store, name)))
        # Eval mode (Orhan & Pitkow 2018 study the trained function): each example's units
        # then do not depend on its batch-mates; the stored net's statistics are precise BN.
        model.eval()
        dev = next(model.parameters()).device
        model(x.to(dev))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [(name, store[name]) for name, _ in acts if name in store]


def _saver(store: dict, name: str):
    def hook(_mod, _inp, out):
        a = out.detach().float().cpu()
        store[name] = a.movedim(1, -1).reshape(-1, a.shape[1]) if a.dim() > 2 else a
    return hook


def dead_unit_fraction(model: nn.Module, x: torch.Tensor, tol: float = 1e-8) -> dict:
    """Per hidden layer, the fraction of units with output ≤ ``tol`` for every input in x.

    Orhan & Pitkow's elimination singularity: a unit that never fires passes no signal
    and gets no gradient, so its incoming weights are free directions of the loss.
    (Meaningful for ReLU-like activations; a tanh unit is never "dead" in this sense.)
    Returns ``{"layers": [names], "fraction": [floats]}``.
    """
    names, fracs = [], []
    for name, a in collect_activations(model, x):
        dead = (a <= tol).all(dim=0)                       # (units,)
        names.append(name)
        fracs.append(float(dead.float().mean()))
    return {"layers": names, "fraction": fracs}


def _cosine_matrix(w: torch.Tensor) -> np.ndarray:
    """|cos| between every pair of rows (incoming weight vectors); zero rows give 0."""
    w = w.detach().double().cpu().flatten(1)               # (units, fan_in)
    wn = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (wn @ wn.T).abs().numpy()


def overlap(model: nn.Module, threshold: float = 0.95) -> dict:
    """Per hidden layer, how close units come to sharing their incoming weights.

    Orhan & Pitkow's overlap singularity: two units with identical incoming weights are
    interchangeable, and only the sum of their outgoing weights matters. For each unit,
    the largest |cosine similarity| to any other unit of its layer; ``mean_max_cos`` is its
    mean over units, ``frac_pairs_above`` the fraction of unit pairs above ``threshold``.
    """
    names, mean_max, frac = [], [], []
    for name, mod in hidden_weight_layers(model):
        c = _cosine_matrix(mod.weight)
        n = c.shape[0]
        names.append(name)
        if n < 2:
            mean_max.append(0.0)
            frac.append(0.0)
            continue
        off = c.copy()
        np.fill_diagonal(off, -np.inf)
        mean_max.append(float(off.max(axis=1).mean()))
        iu = np.triu_indices(n, k=1)
        frac.append(float((c[iu] > threshold).mean()))
    return {"layers": names, "mean_max_cos": mean_max, "frac_pairs_above": frac,
            "threshold": threshold}


def _pr(a: torch.Tensor) -> tuple[float, list[float]]:
    """Normalised participation ratio and singular values of the centred matrix a (N, units)."""
    a = a.double()
    s = torch.linalg.svdvals(a - a.mean(dim=0, keepdim=True))
    lam = s ** 2                                           # ∝ covariance eigenvalues
    denom = float((lam ** 2).sum())
    pr = float(lam.sum() ** 2) / denom / a.shape[1] if denom > 0 else 0.0
    return pr, [float(v) for v in s]


def participation_ratio(model: nn.Module, x: torch.Tensor) -> dict:
    """Per hidden layer, (Σλ)² / Σλ² of the activation covariance, divided by the width.

    Orhan & Pitkow's linear-dependence singularity: when units become linearly dependent
    the covariance has near-zero eigenvalues λ and the ratio drops. 1 = every unit carries
    an independent, equally strong signal; 1/width = one direction only; 0 = no variance.
    ``singular_values`` are those of the centred activation matrix (s_k² = (N−1)·λ_k).
    """
    names, prs, svs = [], [], []
    for name, a in collect_activations(model, x):
        pr, s = _pr(a)
        names.append(name)
        prs.append(pr)
        svs.append(s)
    return {"layers": names, "ratio": prs, "singular_values": svs}


def _flat_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The training loss as a function of one flat parameter vector (eval-mode BN)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    buffers = dict(model.named_buffers())

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes)
        params = {n: t.view(s) for n, t, s in zip(names, parts, shapes)}
        return F.cross_entropy(functional_call(model, {**params, **buffers}, (x,)), y)
    return loss


def _auto_chunk(model: nn.Module, x: torch.Tensor, budget: float = 2e8) -> int:
    """Hessian columns per batch so one batch's activations stay near ``budget`` floats.

    Counts the activation elements of one example (outputs of every leaf module); the
    forward-over-reverse pass keeps a few copies of each, for every example and column.
    """
    count = [0]
    hooks = [m.register_forward_hook(lambda _m, _i, o: count.__setitem__(0, count[0] + o.numel()))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    per_column = 4 * max(count[0], 1) * max(len(x), 1)
    return int(min(512, max(8, budget // per_column)))


def hessian_matrix(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   max_params: int = 5000, chunk: int | None = None) -> torch.Tensor:
    """The exact Hessian of the mean cross-entropy on (x, y) w.r.t. all parameters (P, P).

    BN in eval mode, so the loss depends on the parameters alone, not on the batch. Built
    column by column from Hessian-vector products (forward-over-reverse, ``chunk`` columns
    at a time, sized from the activations when None) to bound memory. Raises
    ``ValueError`` above ``max_params`` parameters: memory grows as P², eigvalsh as P³.
    """
    flat0 = torch.cat([p.detach().flatten() for p in model.parameters()])
    n = flat0.numel()
    if n > max_params:
        raise ValueError(f"the exact Hessian needs a small net: this one has {n} parameters, "
                         f"more than the limit of {max_params} (try a narrower or shallower net)")
    was_training = model.training
    model.eval()
    try:
        dev = flat0.device
        x, y = x.to(dev), y.to(dev)
        chunk = chunk or _auto_chunk(model, x)
        f = _flat_loss(model, x, y)
        g = grad(f)
        hvp = vmap(lambda v: jvp(g, (flat0,), (v,))[1])
        eye = torch.eye(n, dtype=flat0.dtype, device=dev)
        with warnings.catch_warnings():
            # torch's own forward-AD decompositions still call the deprecated jit.script.
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*",
                                    category=DeprecationWarning)
            cols = [hvp(eye[i:i + chunk]) for i in range(0, n, chunk)]
    finally:
        model.train(was_training)
    return torch.cat(cols).detach()                        # row i = H e_i (symmetric)


def hessian_spectrum(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     max_params: int = 5000) -> np.ndarray:
    """Eigenvalues (ascending) of the exact training-loss Hessian of a small net.

    Orhan & Pitkow 2018 (§3, Fig. 4): singularities show up as a pile of eigenvalues at
    zero; skip connections thin it. Symmetrised before ``eigvalsh`` (round-off only).
    """
    h = hessian_matrix(model, x, y, max_params).double()
    return torch.linalg.eigvalsh((h + h.T) / 2).cpu().numpy()


def near_zero_fraction(eigs: np.ndarray | list[float], tol: float = 1e-3) -> float:
    """Fraction of eigenvalues with |λ| ≤ tol · max|λ| (degenerate directions)."""
    e = np.abs(np.asarray(eigs, dtype=float))
    if e.size == 0 or e.max() == 0:
        return 1.0 if e.size else 0.0
    return float((e <= tol * e.max()).mean())


def _hessian_subset(model: nn.Module, y: torch.Tensor, examples: int) -> int:
    """Examples for the Hessian: at least ``examples`` and enough to avoid fake zeros.

    The Gauss-Newton part of the cross-entropy Hessian has rank ≤ (classes − 1) · examples;
    with fewer than P / (classes − 1) examples it would show zero eigenvalues for every
    net, plain or not. We take twice that bound.
    """
    n_params = sum(p.numel() for p in model.parameters())
    classes = max(int(y.max()) + 1, 2) if len(y) else 2
    return min(len(y), max(examples, -(-2 * n_params // (classes - 1))))


def singularity_report(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       max_params: int = 5000, tol: float = 1e-3,
                       hessian_examples: int = 256) -> dict:
    """Every singularity measure in one JSON-safe dict (lists and floats only).

    The per-layer measures use all of x; the Hessian uses its first examples (see
    ``_hessian_subset``), since its cost grows with examples × P². ``hessian`` is None
    (with ``hessian_error`` saying why) when the net is too big for the exact Hessian, so
    the UI can still show the cheap per-layer measures.
    """
    pr = participation_ratio(model, x)
    report = {"dead": dead_unit_fraction(model, x), "overlap": overlap(model),
              "participation": pr, "hessian": None, "hessian_error": None}
    n = _hessian_subset(model, y, hessian_examples)
    try:
        eigs = hessian_spectrum(model, x[:n], y[:n], max_params)
    except ValueError as err:
        report["hessian_error"] = str(err)
    else:
        report["hessian"] = {"eigenvalues": [float(v) for v in eigs], "tol": tol,
                             "near_zero_fraction": near_zero_fraction(eigs, tol),
                             "n_params": int(len(eigs)), "examples": int(n)}
    return report
