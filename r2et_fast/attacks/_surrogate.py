"""The softplus surrogate through which an attack may take its gradient (``surrogate_beta=``).

A piecewise-linear model (ReLU, LeakyReLU) has a piecewise-constant logit gradient, so the input
gradient of its logit saliency is zero almost everywhere and a gradient attack cannot move it.
Dombrowski et al. (2019, "Explanations can be manipulated and geometry is to blame") attack such
a model through a copy whose ReLUs are replaced by softplus(beta): a smooth model that tends to
the real one as beta grows, whose explanation has a useful gradient.

Only activation *modules* are replaced: ``nn.ReLU`` by ``nn.Softplus(beta)`` and ``nn.LeakyReLU(a)``
by :class:`SoftLeakyReLU` ``(a, beta)``. A functional activation inside ``forward`` (``F.relu``,
``torch.relu``, ``x.clamp(min=0)``) cannot be found and stays piecewise linear; max-pooling
stays too (it only selects, so it does not make the saliency's gradient vanish by itself).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast._validation import ArgumentTypeError, check_positive_float

#: The activation modules :func:`softplus_surrogate` replaces.
REPLACED = (nn.ReLU, nn.LeakyReLU)


class SoftLeakyReLU(nn.Module):
    """The softplus analogue of LeakyReLU(a): ``a x + (1 - a) softplus_beta(x)``.

    LeakyReLU(x) = a x + (1 - a) relu(x), so this is the same smoothing the ReLU gets, tends to
    LeakyReLU as beta grows and is ``nn.Softplus(beta)`` for a = 0.
    """

    def __init__(self, negative_slope: float, beta: float) -> None:
        super().__init__()
        self.negative_slope, self.beta = float(negative_slope), float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.negative_slope
        return a * x + (1 - a) * F.softplus(x, beta=self.beta)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}, beta={self.beta}"


def check_surrogate_beta(beta: object, model: object) -> float | None:
    """``surrogate_beta``: None, or a positive finite number for a module model that has at least
    one activation module to replace (else the "surrogate" would be the real model, silently)."""
    if beta is None:
        return None
    value = check_positive_float(beta, "surrogate_beta")
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError("surrogate_beta needs model to be an nn.Module (its activation "
                                f"modules are replaced in a copy), got {type(model).__name__}")
    if not any(isinstance(c, REPLACED) for m in model.modules() for c in m.children()):
        raise ValueError("surrogate_beta: model has no nn.ReLU or nn.LeakyReLU module to replace; "
                         "activations called in forward (F.relu, torch.relu) cannot be swapped")
    return value


def softplus_surrogate(model: nn.Module, beta: float) -> nn.Module:
    """A deep copy of ``model`` with every ``nn.ReLU`` replaced by ``nn.Softplus(beta)`` and every
    ``nn.LeakyReLU(a)`` by ``SoftLeakyReLU(a, beta)``; ``model`` itself is untouched.

    The copy keeps each module's ``training`` flag (the attacks copy a model already in eval mode).
    Raises ``ValueError`` naming ``surrogate_beta`` when there was nothing to replace.
    """
    surrogate = copy.deepcopy(model)
    replaced = 0
    for parent in list(surrogate.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.LeakyReLU):
                new: nn.Module = SoftLeakyReLU(child.negative_slope, beta)
            elif isinstance(child, nn.ReLU):
                new = nn.Softplus(beta=beta)
            else:
                continue
            new.train(child.training)
            setattr(parent, name, new)
            replaced += 1
    if replaced == 0:  # check_surrogate_beta saw one; the model has changed since
        raise ValueError("surrogate_beta: model has no nn.ReLU or nn.LeakyReLU submodule to replace")
    return surrogate
