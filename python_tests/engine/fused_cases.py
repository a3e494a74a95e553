"""Shared pieces of the fused MLP objective tests: random MLPs and objectives (Hypothesis), the
autograd oracle (the training methods with engine="autograd"; for C = 1 their task loss is
BCE-with-logits, as the fused objective's), guards against examples whose
answer is decided by rounding (ties in the ranking, points on a kink), and comparisons."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast.engine import compute_gradients
from r2et_fast.engine._fused_mlp import fused_objective
from r2et_fast.engine._mlp_spec import LEAKY_RELU, RELU, SOFTPLUS, recognize_mlp
from r2et_fast.reference._fused_math import LINEAR, activation
from r2et_fast.regularizers import mean_pair_gap
from r2et_fast.train import TrainConfig, _methods

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

# R2ET_FAST_FUZZ_EXAMPLES (make fuzz: 10,000) raises every test's own small example count.
DEEP = int(os.environ.get("R2ET_FAST_FUZZ_EXAMPLES", "0"))


def examples(n: int) -> int:
    return max(n, DEEP)


@dataclass(frozen=True)
class Case:
    score: str = "loss"
    k: int = 2
    pairs: str = "all"
    transform: str = "linear"
    n_pairs: int | None = None
    kappa: float = 1e-3
    lambda_gap: float = 0.3
    lambda_hess: float = 0.1
    with_gap: bool = True
    with_hessian: bool = True
    adaptive: bool = False

    def kwargs(self) -> dict:
        return dict(vars(self))


# ---- models and batches ------------------------------------------------------------------------

def activations():
    return st.one_of(
        st.just(("relu",)), st.tuples(st.just("leaky"), st.sampled_from([0.01, 0.2, -0.3, 1.5])),
        st.tuples(st.just("softplus"), st.sampled_from([0.5, 1.0, 10.0]), st.sampled_from([20.0, 1.0])),
        st.just(("tanh",)))


def make_activation(spec: tuple) -> nn.Module:
    if spec[0] == "relu":
        return nn.ReLU()
    if spec[0] == "leaky":
        return nn.LeakyReLU(spec[1])
    if spec[0] == "softplus":
        return nn.Softplus(beta=spec[1], threshold=spec[2])
    return nn.Tanh()


@st.composite
def mlp_cases(draw, dtype=torch.float64, max_width=256):
    """(model, x, y): depth 1-4, hidden widths 1-max_width, C in {1, 2, 10}, every activation,
    harmless extra layers, nesting, missing biases and weight scales that reach the nonlinearity."""
    n = draw(st.integers(2, 40))
    depth = draw(st.integers(1, 4))
    width = st.one_of(st.integers(1, 12), st.integers(13, max_width))
    widths = [n] + [draw(width) for _ in range(depth - 1)] + [draw(st.sampled_from([1, 2, 10]))]
    layers: list[nn.Module] = []
    if draw(st.integers(0, 5)) == 0:
        layers.append(nn.Flatten())
    seed = draw(st.integers(0, 2**31 - 1))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i in range(depth):
            lin = nn.Linear(widths[i], widths[i + 1], bias=draw(st.integers(0, 5)) > 0)
            with torch.no_grad():
                lin.weight.mul_(draw(st.sampled_from([0.5, 1.0, 2.5])))
            layers.append(lin)
            if i < depth - 1 or draw(st.integers(0, 7)) == 0:  # now and then an activation last
                layers.append(make_activation(draw(activations())))
            if draw(st.integers(0, 7)) == 0:
                layers.append(draw(st.sampled_from([nn.Identity(), nn.Dropout(0.0), nn.Flatten()])))
        if len(layers) > 2 and draw(st.booleans()):  # nest a slice
            cut = draw(st.integers(1, len(layers) - 1))
            layers = [nn.Sequential(*layers[:cut]), *layers[cut:]]
        batch = draw(st.sampled_from([1, 2, 5]))
        x = torch.randn(batch, n, dtype=torch.float64) * draw(st.sampled_from([0.5, 1.0, 3.0]))
        classes = widths[-1]
        y = torch.randint(0, 2 if classes == 1 else classes, (batch,))
    return nn.Sequential(*layers).to(dtype), x.to(dtype), y


@st.composite
def objective_cases(draw, n: int, kappas=(1e-3, 1e-2, 0.3)):
    with_gap = draw(st.booleans()) or draw(st.booleans())  # Est-H a quarter of the time
    pairs = draw(st.sampled_from(["all", "anchor", "mm"]))
    k = draw(st.integers(1, n - 1))
    n_pairs = draw(st.none() | st.integers(1, min(k, n - k))) if pairs == "mm" else None
    return Case(score=draw(st.sampled_from(["loss", "logit", "prob"])), k=k, pairs=pairs,
                transform=draw(st.sampled_from(["linear", "exp"])), n_pairs=n_pairs,
                kappa=draw(st.sampled_from(kappas)),
                lambda_gap=draw(st.sampled_from([0.0, 0.3, 1.7])),
                lambda_hess=draw(st.sampled_from([0.0, 0.1, 2.0])), with_gap=with_gap,
                with_hessian=draw(st.booleans()) or not with_gap, adaptive=draw(st.booleans()))


# ---- the oracle: the training methods themselves, engine="autograd" -----------------------------

_ORACLES: dict[tuple[str, bool], type] = {}


def oracle_method(case: Case, backend: str | None = None) -> _methods.Method:
    cfg = TrainConfig(method="r2et" if case.with_gap else "est_h", k=case.k, score=case.score,
                      lambda_gap=case.lambda_gap, lambda_hess=case.lambda_hess, kappa=case.kappa,
                      transform=case.transform, n_pairs=case.n_pairs, adaptive=case.adaptive,
                      engine="autograd", backend=backend)
    if not case.with_gap:
        return _methods.EstimatedHessian(cfg)
    key = (case.pairs, case.with_hessian)
    if key not in _ORACLES:  # the R2ET family with any pair set ("anchor" has no registered method)
        _ORACLES[key] = type("Oracle", (_methods._R2ETFamily,),
                             {"default_pairs": case.pairs, "with_hessian": case.with_hessian})
    method = _ORACLES[key](cfg)
    assert method.pairs == case.pairs
    return method


def _backward(model: nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]


def run_autograd(model: nn.Module, x, y, case: Case, backend: str | None = None):
    """(loss, parts, grads) of the training method on a copy of ``model``."""
    model = copy.deepcopy(model)
    loss, parts = oracle_method(case, backend)(model, x, y)
    return loss.detach(), parts, _backward(model, loss)


def run_fused(model: nn.Module, x, y, case: Case, backend: str | None = "reference"):
    model = copy.deepcopy(model)
    loss, parts = fused_objective(model, x, y, backend=backend, **case.kwargs())
    return loss.detach(), parts, _backward(model, loss)


# ---- guards: examples whose answer rounding decides ---------------------------------------------

def _pre_activations(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Distance of each kinked activation's input to its kink, per layer."""
    spec = recognize_mlp(model)
    assert not isinstance(spec, str)
    out, u, j = [], x.flatten(1), 0
    for i, kind in enumerate(spec.kinds):
        p0, p1 = spec.params[2 * i], spec.params[2 * i + 1]
        if kind == LINEAR:
            lin = spec.linears[j]
            u, j = F.linear(u, lin.weight, lin.bias), j + 1
            continue
        if kind in (RELU, LEAKY_RELU):
            out.append(u.abs())
        elif kind == SOFTPLUS:
            out.append((u * p0 - p1).abs() / p0)
        u = activation(u, kind, p0, p1)[0]
    return out


def _separated(values: torch.Tensor, tol: float) -> bool:
    """Adjacent sorted values differ by more than tol, unless both are exactly 0 (structural)."""
    s = values.sort(dim=1, descending=True).values
    a, b = s[:, :-1], s[:, 1:]
    return bool((((a - b) > tol) | ((a == 0) & (b == 0))).all())


@torch.no_grad()
def well_posed(model: nn.Module, x, y, case: Case, rel: float, hess_rel: float | None = None,
               gap_rel: float | None = None, saturation: float | None = None) -> bool:
    """False when a perturbation of relative size ``rel`` could change the ranking, the sign
    pattern of v or an activation pattern; with ``hess_rel``, when g(x + kappa v) - g(x) is below
    ``hess_rel`` ||g(x)|| (Ĥ then keeps few digits); with ``gap_rel``, when the linear mean gap is
    below ``gap_rel`` max |g| (a difference of close saliencies keeps few digits); with
    ``saturation``, when a probability is within it of 1 (1 - p cancels in ds/dz for the loss
    and prob scores)."""
    with torch.enable_grad():
        gr = compute_gradients(model, x, y, score=case.score, kappa=case.kappa, engine="autograd")
    g, g_shift = gr.g_x.flatten(1), gr.g_shift.flatten(1)
    if saturation is not None and case.score != "logit":
        z = gr.logits
        p = torch.cat([torch.sigmoid(z), torch.sigmoid(-z)], 1) if z.shape[1] == 1 else z.softmax(1)
        if bool((p > 1 - saturation).any()):
            return False
    scale = g.abs().amax(dim=1, keepdim=True)
    tol = rel * scale.clamp_min(1e-30)
    if bool(((g != 0) & (g.abs() < tol)).any()):  # sign(g) could flip
        return False
    n = g.shape[1]
    if case.with_gap:
        needed = n if case.pairs == "all" else min(n, 2 * case.k + 1)
        top = g.abs().sort(dim=1, descending=True).values
        if case.pairs == "all":
            if not _separated(top[:, case.k - 1:case.k + 1], float(tol.max())):
                return False
        elif not _separated(top[:, :needed], float(tol.max())):
            return False
    if case.with_gap and gap_rel is not None and case.transform == "linear":
        gap = mean_pair_gap(g.abs(), case.k, case.pairs, case.transform, case.n_pairs)
        if bool(gap < gap_rel * scale.mean()):
            return False
    d = (g_shift - g).norm(dim=1)
    if case.with_hessian and hess_rel is not None and bool(((d > 0) & (d < hess_rel * g.norm(dim=1))).any()):
        return False
    x_shift = x.flatten(1) + case.kappa * torch.sign(g) / math.sqrt(n)
    for point in (x.flatten(1), x_shift):
        for dist in _pre_activations(model, point):
            if bool((dist < rel * (1 + dist.amax())).any()):
                return False
    return True


# ---- comparisons ---------------------------------------------------------------------------------

def close(a: torch.Tensor, b: torch.Tensor, rel: float, atol: float = 0.0) -> bool:
    """|a - b| <= rel * (|b| + max |b|) + atol elementwise: relative, with the tensor's scale as
    floor."""
    a, b = a.double(), b.double()
    if b.numel() == 0:
        return a.shape == b.shape
    return bool(((a - b).abs() <= rel * (b.abs() + b.abs().max()) + atol).all())


def _triples(rel: float, *results):
    """(loss, parts, grads) results, zipped tensor by tensor: (tensors, name, absolute tolerance).

    The loss and the parts get a floor of 1000 eps (a loss like CE = log(1 + 3e-8) keeps only ~8
    digits in float64 however computed); a parameter's gradient is relative to the largest
    gradient entry of the whole model (one layer's gradient can be 1e-8 of another's, and then its
    last digits are rounding of the others' scale), with a floor of 1000 eps |loss|: gradients far
    below the loss are what is left after its terms' gradients cancel (a loss of 7 from the exp
    gaps with gradients of 1e-4 keeps ~13 digits of the terms, ~9 of the sum's gradient)."""
    want = results[-1]
    eps = torch.finfo(want[0].dtype).eps
    yield tuple(r[0] for r in results), "loss", 1e3 * eps
    for key in want[1]:
        yield tuple(r[1][key] for r in results), key, 1e3 * eps
    scale = max((w.abs().max().item() for w in want[2] if w.numel()), default=0.0)
    floor = 1e3 * eps * abs(float(want[0]))
    for i, grads in enumerate(zip(*(r[2] for r in results))):
        yield grads, f"parameter {i}", max(rel * scale, floor)


def assert_agree(got, want, rel: float, label: str = "") -> None:
    """Every tensor of ``got`` close to ``want``'s (see _triples for the absolute floors)."""
    assert set(got[1]) == set(want[1]), label
    for (g, w), name, atol in _triples(rel, got, want):
        assert close(g, w, rel, atol), f"{label} {name}: max error {max_error(g, w):.3g} (floor {atol:.3g})"


def assert_agree_float32(got, want, truth, label: str = "") -> None:
    """float32 ``got`` against float32 ``want``: within 1e-4 or, where float32 cannot give that (a
    finite difference that cancels, Ĥ's parameter derivative most of all), no more than 10 times
    as far from the float64 ``truth`` as ``want`` is (both paths' rounding errors have the same
    size, not the same value)."""
    assert set(got[1]) == set(want[1]), label
    for (g, w, t), name, atol in _triples(1e-4, got, want, truth):
        assert close(g, w, 1e-4, atol) or max_error(g, t) <= 10 * max_error(w, t), (
            f"{label} {name}: error {max_error(g, t):.3g} vs the reference's {max_error(w, t):.3g}")


def permuted(model: nn.Module, seed: int = 0):
    """(a copy of ``model`` with every hidden layer's units permuted, a map of that copy's parameter
    gradients back to the original's). The function is exactly the same, the matmuls sum in
    another order: the two results differ by the computation's own rounding noise."""
    twin = copy.deepcopy(model)
    spec = recognize_mlp(twin)
    assert not isinstance(spec, str)
    g = torch.Generator().manual_seed(seed)
    perms: list[torch.Tensor | None] = [torch.randperm(lin.out_features, generator=g)
                                        for lin in spec.linears[:-1]]
    perms.append(None)  # the outputs (classes) keep their order
    inverse = []  # per parameter, in parameters() order: (row permutation, column permutation) to undo
    prev = None
    with torch.no_grad():
        for lin, perm in zip(spec.linears, perms):
            rows = perm if perm is not None else torch.arange(lin.out_features)
            cols = prev if prev is not None else torch.arange(lin.in_features)
            lin.weight.copy_(lin.weight[rows][:, cols])
            inverse.append((rows.argsort(), cols.argsort()))
            if lin.bias is not None:
                lin.bias.copy_(lin.bias[rows])
                inverse.append((rows.argsort(), None))
            prev = perm
    assert len(inverse) == len(list(twin.parameters()))

    def back(grads: list[torch.Tensor]) -> list[torch.Tensor]:
        return [gr[r] if c is None else gr[r][:, c] for gr, (r, c) in zip(grads, inverse)]

    return twin, back


def assert_agree_within_noise(got, want, rerun, rel: float, label: str = "") -> None:
    """``assert_agree(got, want, rel)``, except where ``want``'s own rounding noise (its distance to
    ``rerun``, the same computation on the permuted copy) is larger: then within 10 times that
    noise. An ill-conditioned objective (Ĥ's parameter derivative, a finite difference of dg/dtheta
    at two points, times the adaptive 1/Ĥ) keeps fewer than 9 digits in float64 by any method."""
    assert set(got[1]) == set(want[1]), label
    for (g, w, r), name, atol in _triples(rel, got, want, rerun):
        assert close(g, w, rel, atol) or max_error(g, w) <= 10 * max_error(r, w), (
            f"{label} {name}: error {max_error(g, w):.3g} (tolerance {atol:.3g} + relative), the "
            f"reference's noise {max_error(r, w):.3g}")


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item() if b.numel() else 0.0
