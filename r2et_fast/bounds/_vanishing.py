"""A vanishing attribution Jacobian: why ``certify`` warns instead of reporting robustness.

Autograd differentiates ReLU, leaky ReLU, hard tanh and max-pooling as piecewise-linear maps, so the
input Hessian of a ReLU network's logit is exactly 0 wherever it is defined: the signed saliency of
the logit is piecewise constant, J = dg/dx = 0, xi_max = 0, T_e = 0 and every top-k radius is
infinite. That is a first-order statement about the linear region around x only; between regions the
saliency jumps, which no Jacobian sees. Reported silently, it reads as perfect robustness.

Decision: ``certify`` keeps the values (they are the correct first-order numbers, and a batch may mix
such samples with others) and warns with :class:`VanishingJacobianWarning` whenever some sample has
xi_max == 0 exactly. The trigger is the exact zero, not the model's structure: activations called
functionally in ``forward`` are invisible to a scan of the modules, while the zero is exact for any
piecewise-linear model (the products are exact zeros, not rounding). The module scan and the measured
change of the attribution at x +- eps v_max only word the message. To make it an error:
``warnings.simplefilter("error", VanishingJacobianWarning)``.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# Leaf modules whose second derivative autograd takes as 0 (affine, or piecewise linear).
_AFFINE = (nn.Linear, nn.Bilinear, nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d,
           nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.modules.conv._ConvNd,
           nn.modules.batchnorm._BatchNorm, nn.modules.pooling._AvgPoolNd, nn.AdaptiveAvgPool1d,
           nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.ZeroPad2d, nn.ConstantPad1d,
           nn.ConstantPad2d, nn.ConstantPad3d)
_PIECEWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.Hardtanh, nn.Threshold,
              nn.modules.pooling._MaxPoolNd, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
              nn.AdaptiveMaxPool3d)


class VanishingJacobianWarning(UserWarning):
    """``certify`` found xi_max = 0: its bounds are 0 and its top-k radii infinite, which is not
    evidence of robustness (see :mod:`r2et_fast.bounds._vanishing`)."""


def piecewise_linear_modules(model: object) -> bool:
    """Every leaf module of ``model`` is affine or piecewise linear, and some activation is
    piecewise linear (False for a non-Module; blind to activations called in ``forward``)."""
    if not isinstance(model, nn.Module):
        return False
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    return (all(isinstance(m, _AFFINE + _PIECEWISE) for m in leaves)
            and any(isinstance(m, _PIECEWISE) for m in leaves))


def warn_if_vanishing(xi_max: torch.Tensor, shift_deviation: torch.Tensor, model: object, method: str,
                      score: str) -> None:
    """Warn (:class:`VanishingJacobianWarning`) when some sample has xi_max == 0 exactly.

    ``shift_deviation`` (B,) is ``certify``'s ||g(x +- eps v_max) - g(x)||: where it is positive
    the attribution jumped although its Jacobian is zero, which the message reports.
    """
    zero = xi_max == 0
    n_zero = int(zero.sum())
    if n_zero == 0:
        return
    where = zero.nonzero().flatten()[:5].tolist()
    if method == "saliency" and score == "logit":
        modules = " (the model's modules are all piecewise linear)" if piecewise_linear_modules(model) else ""
        why = ("the saliency of the logit of a piecewise-linear model (ReLU, max-pooling) is piecewise "
               f"constant{modules}")
    else:
        why = "the attribution is locally constant at these samples (e.g. dead ReLUs)"
    jumped = zero & (shift_deviation > 0)
    if bool(jumped.any()):
        why += (f"; at {int(jumped.sum())} of them it still changed at x +- eps v_max (by up to "
                f"{float(shift_deviation[jumped].max()):.3g}): it jumps between linear regions, "
                "which no first-order bound sees")
    else:
        why += ("; it did not change at x +- eps v_max either (the zero bound is exact only for an "
                "affine model)")
    warnings.warn(
        f"certify: xi_max = 0 for {n_zero} of {xi_max.numel()} samples (e.g. {where}): the "
        f"Jacobian of the {method} attribution vanishes, so T_e = 0 and the top-k radius is "
        f"infinite; {why}. This is not evidence of robustness. Certify a smooth model instead "
        "(e.g. ReLU replaced by Softplus(beta), as the attacks' softplus surrogate), or use "
        "score='loss' or 'prob' (their curvature does not vanish), or method='gradxinput'/'ig'",
        VanishingJacobianWarning, stacklevel=3)
