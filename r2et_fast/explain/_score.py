"""The scalar score s(x) whose input gradient the explanations use, and its gradient.

For a model with C >= 2 outputs z = f(x) and class c:

* ``"logit"``: s = z_c
* ``"prob"``:  s = softmax(z)_c
* ``"loss"``:  s = -log softmax(z)_c (per-sample cross-entropy at label c)

For a single-output model (C == 1) with logit z = f(x)[:, 0] and label c in {0, 1}:

* ``"logit"``: s = z (the label is ignored)
* ``"prob"``:  s = sigmoid(z) (the label is ignored)
* ``"loss"``:  s = BCE-with-logits(z, c) = -c log sigmoid(z) - (1 - c) log(1 - sigmoid(z))

With ``target=None`` the explained class is the prediction: argmax_j z_j, or 1[z > 0] if C == 1.

Two defaults, on purpose (docs/spec.md §1, §3, §5):

* :data:`EXPLAINER_SCORE` (``"logit"``) is the default of every explainer and of the bounds: it is
  Captum's convention (an attribution explains the model's output at the target class), so maps
  compare one to one with Captum's and with the saliency literature.
* :data:`TRAINING_SCORE` (``"loss"``) is the default where R2ET's authors explain the model: the
  regularisers, ``TrainConfig`` and the attacks' default explainer. Their code differentiates the
  cross-entropy at the label, so training and attacks reproduce the paper only with the loss.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Literal, overload

import torch
import torch.nn.functional as F

from r2et_fast._validation import check_model_output, check_target_range

SCORES = ("logit", "prob", "loss")

#: Default score of the explainers and bounds: the output at the target class (Captum's convention).
EXPLAINER_SCORE = "logit"
#: Default score of training, regularisers and attacks: the loss at the label (the authors' code).
TRAINING_SCORE = "loss"


def predicted_class(out: torch.Tensor) -> torch.Tensor:
    """Predicted class per row of scores (B, C): argmax, or 1[z > 0] for one output."""
    out = out.detach()
    if out.shape[1] == 1:
        return (out[:, 0] > 0).to(torch.long)
    return out.argmax(dim=1)


def select_score(out: torch.Tensor, target: torch.Tensor, score: str) -> torch.Tensor:
    """Per-sample score s (B,) from model outputs (B, C) and labels (B,)."""
    if out.shape[1] == 1:
        z = out[:, 0]
        if score == "logit":
            return z
        if score == "prob":
            return torch.sigmoid(z)
        return F.binary_cross_entropy_with_logits(z, target.to(z.dtype), reduction="none")
    idx = target.view(-1, 1)
    if score == "logit":
        return out.gather(1, idx).squeeze(1)
    if score == "prob":
        return torch.softmax(out, dim=1).gather(1, idx).squeeze(1)
    return F.cross_entropy(out, target, reduction="none")


def predict(model: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """Predicted class of a clean batch (one forward pass without a graph)."""
    with torch.no_grad():
        out = check_model_output(model(inputs.detach()), inputs.shape[0])
    return predicted_class(out)


# (grad, target) and, with return_output=True, (grad, target, output)
GradTarget = tuple[torch.Tensor, torch.Tensor]
GradTargetOutput = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


FastGradient = Callable[[object, torch.Tensor, "torch.Tensor | None", str], "GradTarget | None"]
_FAST_GRADIENTS: list[FastGradient] = []


# Fast paths for gradients kept differentiable w.r.t. the input only (weights held fixed): what an
# attack step needs. Consulted only inside ``input_gradients_only()``: elsewhere a create_graph
# gradient must also carry the parameters' graph (training, Exact-H, SSR).
_FAST_INPUT_GRADIENTS: list[FastGradient] = []
_INPUT_ONLY = contextvars.ContextVar("r2et_fast_input_gradients_only", default=False)


@contextlib.contextmanager
def input_gradients_only() -> Iterator[None]:
    """Within the block, create_graph gradients need only be differentiable w.r.t. the input: a
    registered fast path may compute them (the attacks' steps use this)."""
    token = _INPUT_ONLY.set(True)
    try:
        yield
    finally:
        _INPUT_ONLY.reset(token)


_AUTOGRAD_ONLY = contextvars.ContextVar("r2et_fast_autograd_gradients", default=False)


@contextlib.contextmanager
def autograd_gradients() -> Iterator[None]:
    """Within the block every gradient comes from autograd, no registered fast path (what
    ``engine="autograd"`` asks for, e.g. of AT's inner attack)."""
    token = _AUTOGRAD_ONLY.set(True)
    try:
        yield
    finally:
        _AUTOGRAD_ONLY.reset(token)


def fast_paths_allowed() -> bool:
    """False inside :func:`autograd_gradients`: the fast paths elsewhere (the attacks' fused loop)
    decline there too."""
    return not _AUTOGRAD_ONLY.get()


def register_fast_input_gradient(fn: FastGradient) -> None:
    """Like ``register_fast_gradient``, for ``create_graph`` gradients inside ``input_gradients_only``:
    ``fn`` returns a gradient differentiable w.r.t. z (not the model's parameters), or None."""
    if fn not in _FAST_INPUT_GRADIENTS:
        _FAST_INPUT_GRADIENTS.append(fn)


def register_fast_gradient(fn: FastGradient) -> None:
    """Let ``fn(model, z, target, score)`` compute ``(grad, target)`` of detached explanations:
    it returns None for a model or input it does not take. ``r2et_fast.engine`` registers the
    fused MLP saliency here (explain sits below the engine, so it cannot import it)."""
    if fn not in _FAST_GRADIENTS:
        _FAST_GRADIENTS.append(fn)


@overload
def score_gradient(model: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                   target: torch.Tensor | None, score: str, create_graph: bool,
                   return_output: Literal[False] = False) -> GradTarget: ...
@overload
def score_gradient(model: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                   target: torch.Tensor | None, score: str, create_graph: bool,
                   return_output: Literal[True]) -> GradTargetOutput: ...
@overload
def score_gradient(model: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                   target: torch.Tensor | None, score: str, create_graph: bool,
                   return_output: bool) -> GradTarget | GradTargetOutput: ...
def score_gradient(
    model: Callable[[torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    target: torch.Tensor | None,
    score: str,
    create_graph: bool,
    return_output: bool = False,
) -> GradTarget | GradTargetOutput:
    """Gradient ds/dz of the per-sample score for a batch ``z`` that requires grad.

    The per-sample scores are summed before differentiating; this gives each row its own
    gradient as long as the model treats rows independently (no train-mode BatchNorm).
    Returns ``(grad, target)``, where ``target`` is the resolved label tensor (B,), and the model's
    output (B, C) as a third item with ``return_output`` (so a caller can reuse the forward pass).
    A detached gradient (no ``create_graph``, no output asked for) of a model a registered fast
    path recognises comes from it (``register_fast_gradient``), and so does a create_graph one
    inside ``input_gradients_only`` (``register_fast_input_gradient``).
    """
    if not return_output and not _AUTOGRAD_ONLY.get():
        paths = _FAST_GRADIENTS if not create_graph else _FAST_INPUT_GRADIENTS if _INPUT_ONLY.get() else ()
        for fast in paths:
            found = fast(model, z, target, score)
            if found is not None:
                return found
    with torch.enable_grad():
        out = check_model_output(model(z), z.shape[0])
        if target is None:
            target = predicted_class(out)
        else:
            check_target_range(target, out.shape[1])
        s = select_score(out, target, score).sum()
        if not s.requires_grad:  # the score does not depend on z (or on anything)
            grad = None
        else:
            (grad,) = torch.autograd.grad(s, z, create_graph=create_graph, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(z)
    return (grad, target, out) if return_output else (grad, target)
