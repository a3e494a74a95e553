"""The fused MLP attack loop op (docs/spec.md §5): every step of an explanation attack on an MLP
given by its weights, for a whole batch, in one call.

Most callers want the attacks themselves (``ERAttack``, ``MSEAttack``, ``TopKAttack``,
``AttributionPGD``): on a recognised MLP on the CPU they run through this op
(``r2et_fast.engine._fused_attack``). Layer codes: see ``r2et_fast.engine._mlp_spec``.
"""

from __future__ import annotations

import torch

from r2et_fast import _ops
from r2et_fast import _validation as v
from r2et_fast.explain._score import SCORES
from r2et_fast.ops._dispatch import use_native
from r2et_fast.ops.fused import _check_net
from r2et_fast.ops.regularizers import _check_pair_options
from r2et_fast.reference import fused_attack as _twin

OBJECTIVES = ("pair_gap", "distance", "sum")
NORMS = ("l2", "linf")

# (x_adv, P@k per step (steps + 1, B), steps kept (B,), maps at x_adv, prediction kept, vanished)
AttackLoopResult = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _check_rows(t: object, name: str, x0: torch.Tensor, dtype: torch.dtype, dims: int) -> torch.Tensor:
    t = v.check_tensor(t, name)
    if t.dtype != dtype or t.dim() != dims or t.shape[0] != x0.shape[0] or t.device != x0.device:
        raise ValueError(f"{name} must be a {dims}-D {dtype} tensor with {x0.shape[0]} rows on {x0.device}, "
                         f"got {t.dtype} {tuple(t.shape)} on {t.device}")
    return t


def fused_mlp_attack(x0: torch.Tensor, x_start: torch.Tensor, target: torch.Tensor, pred0: torch.Tensor,
                     clean: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor, lower: torch.Tensor | None,
                     upper: torch.Tensor | None, probe: torch.Tensor, weights: list[torch.Tensor],
                     biases: list[torch.Tensor], layers: list[int], layer_params: list[float],
                     score: str = "loss", abs: bool = True, objective: str = "pair_gap",  # noqa: A002
                     pairs: str = "all", transform: str = "linear", k: int = 8, eps: float = 1.0,
                     alpha: float = 1e-3, steps: int = 100, norm: str = "linf", step_norm: str = "l2",
                     early_stop: bool = True, *, backend: str | None = None) -> AttackLoopResult:
    """Every step of an attack on the maps m = |g| (``abs``) or g, g = ds/dx of ``score`` at the
    class ``target``, of the MLP ``layers`` (x0 (B, n) the clean points, ``x_start`` the first
    iterate).

    The attack minimises, per sample, ``objective``: ``"pair_gap"`` G_k over the fixed pairs
    (``hi``, ``lo``) of ``pairs``/``transform`` (as ``ops.pair_gap_at``); ``"distance"``
    -||m - clean||^2; ``"sum"`` the sum of m over the features ``hi`` (B, P). Each step is
    ``ops.projected_step`` (``alpha``, ``eps``, ``step_norm``, ``norm``, the box ``lower``/``upper``
    (n,) or None); with ``early_stop`` a sample whose prediction leaves ``pred0`` goes back to its
    last point and stops. ``probe`` (B, n): the fixed random combination of the maps that tells a
    zero Jacobian from a stationary point at the start (``attacks._vanishing``).

    Returns ``(x_adv, precision (steps + 1, B) P@k against T_k(clean) at every iterate, steps_run
    (B,), the maps at x_adv, label_kept (B,) bool, vanished (B,) bool)``, all detached.
    """
    v.check_maps(x0, "x0", min_features=2)
    for name, t in (("x_start", x_start), ("clean", clean), ("probe", probe)):
        t = v.check_tensor(t, name)
        if t.shape != x0.shape or t.dtype != x0.dtype or t.device != x0.device:
            raise ValueError(f"{name} must have the shape, dtype and device of x0 {tuple(x0.shape)}, got "
                             f"{tuple(t.shape)} {t.dtype} on {t.device}")
    target = _check_rows(target, "target", x0, torch.int64, 1)
    pred0 = _check_rows(pred0, "pred0", x0, torch.int64, 1)
    hi, lo = _check_rows(hi, "hi", x0, torch.int64, 2), _check_rows(lo, "lo", x0, torch.int64, 2)
    for name, bound in (("lower", lower), ("upper", upper)):
        if bound is not None and (not isinstance(bound, torch.Tensor) or tuple(bound.shape) != (x0.shape[1],)
                                  or bound.dtype != x0.dtype or bound.device != x0.device):
            raise ValueError(f"{name} must be None or a ({x0.shape[1]},) {x0.dtype} tensor on {x0.device}")
    n_out = _check_net(x0, weights, biases, layers, layer_params)
    v.check_choice(score, "score", SCORES)
    v.check_bool(abs, "abs")
    v.check_bool(early_stop, "early_stop")
    v.check_choice(objective, "objective", OBJECTIVES)
    _check_pair_options(pairs, transform)
    v.check_k(k, x0.shape[1])
    if objective == "pair_gap" and pairs == "all" and (hi.shape[1] != k or lo.shape[1] != 0):
        raise ValueError(f"pairs 'all' takes T_k in hi (B, k = {k}) and an empty lo (B, 0), got hi "
                         f"{tuple(hi.shape)} and lo {tuple(lo.shape)}")
    eps, alpha = v.check_nonnegative_float(eps, "eps"), v.check_nonnegative_float(alpha, "alpha")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    v.check_choice(norm, "norm", NORMS)
    v.check_choice(step_norm, "step_norm", NORMS)
    args = (list(weights), list(biases), list(layers), [float(p) for p in layer_params], score, abs,
            objective, pairs, transform, int(k), eps, alpha, steps, norm, step_norm, early_stop)
    tensors = (x0.detach(), x_start.detach(), target, pred0, clean.detach(), hi, lo, lower, upper, probe)
    if use_native("fused_mlp_attack", x0, backend):  # the kernel checks the values and indices
        return _ops.native("fused_mlp_attack")(*tensors, *args)
    for name, t in (("x0", x0), ("x_start", x_start), ("clean", clean), ("probe", probe)):
        v.check_finite(t, name)
    if not v.is_symbolic(target):
        v.check_target_range(target, n_out)
        v.check_target_range(pred0, n_out)
        for name, idx in (("hi", hi), ("lo", lo)):
            if idx.numel() and not bool(((idx >= 0) & (idx < x0.shape[1])).all()):
                raise ValueError(f"{name} must hold feature indices in [0, {x0.shape[1]})")
    with torch.no_grad():
        return _twin.fused_mlp_attack(*tensors, [w.detach() for w in weights], [b.detach() for b in biases],
                                      *args[2:])
