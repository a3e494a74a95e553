"""Train mode and the explanation passes (docs/spec.md §3, "Train mode").

The regularisers explain the model that is evaluated and attacked: the model in eval mode. So while
a model trains, every explanation pass (g(x), g(x + kappa v), the Hessian probes, SSR's Jacobian)
runs with the model switched to eval mode: BatchNorm uses its running statistics and updates none
of them, Dropout is off (otherwise Ĥ would measure the difference of two dropout masks). The task
loss keeps the model's own mode: it comes from one ordinary forward pass, the only one that updates
BatchNorm's statistics in a step.

When no layer of the model behaves differently in the two modes, both forwards are the same
computation and the explanation pass's logits serve the task loss (no extra pass). Layers known to
differ are torch's BatchNorm, Dropout and InstanceNorm (with running statistics) families; a module
class defined outside torch and this package may read ``self.training`` in its forward, so it is
treated as differing too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

#: torch layers whose forward differs between train and eval mode.
MODE_DEPENDENT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.dropout._DropoutNd,
)
_OWN_MODULES = ("torch.", "r2et_fast.")


def _differs(module: nn.Module) -> bool:
    if isinstance(module, MODE_DEPENDENT_LAYERS):
        return True
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return module.track_running_stats
    return not type(module).__module__.startswith(_OWN_MODULES)


def mode_dependent(model: object) -> bool:
    """Whether ``model`` is an ``nn.Module`` in training mode with a layer whose forward differs in
    eval mode (then explanation passes and the task loss need separate forwards)."""
    if not isinstance(model, nn.Module):
        return False
    return any(m.training and _differs(m) for m in model.modules())


def modules_of(*models: object) -> list[nn.Module]:
    """The distinct ``nn.Module`` objects among ``models`` (the attack's model and its explainer's,
    which may be another object); anything else (a plain function, None) has no mode to switch."""
    found: list[nn.Module] = []
    for candidate in models:
        if isinstance(candidate, nn.Module) and all(candidate is not m for m in found):
            found.append(candidate)
    return found


@contextmanager
def eval_mode(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Put ``modules`` in eval mode for the block; restore every submodule's own ``training`` flag
    afterwards, even on an exception.

    Why: in train mode BatchNorm normalises by batch statistics (the rows of a batch interact, and
    the explanation of one sample depends on the others) and updates its running buffers at every
    forward pass, and Dropout makes each iterate's explanation random. Saving each submodule's flag
    (not just the root's) keeps a model whose parts were put in eval mode by hand as it was.
    """
    saved = [(m, m.training) for root in modules for m in root.modules()]
    try:
        for root in modules:
            root.eval()
        yield
    finally:
        for module, training in saved:
            module.training = training


@contextmanager
def explanation_mode(model: object) -> Iterator[bool]:
    """Run the block with ``model`` in eval mode if it is :func:`mode_dependent`; yields whether it
    switched. Every submodule's own ``training`` flag is restored afterwards, also on an error."""
    if not mode_dependent(model):
        yield False
        return
    with eval_mode(modules_of(model)):
        yield True


def task_logits(model, x: torch.Tensor, logits: torch.Tensor, switched: bool) -> torch.Tensor:
    """The logits the task loss uses: those of the explanation pass, or, when that pass ran in eval
    mode (``switched``), a forward pass in the model's own (training) mode."""
    return model(x) if switched else logits
