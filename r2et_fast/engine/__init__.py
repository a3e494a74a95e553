"""Gradient engines: how g(x), g(x + kappa v) and the task loss's logits are computed (docs/spec.md §3).

``engine=`` names the algorithm, everywhere it is accepted (``TrainConfig``, the regulariser
functions, the CLI): ``"autograd"`` (separate double-backprop passes), ``"batched"`` (x and
x + kappa v in one pass over 2B rows), ``"fused"`` (MLPs only: the R2ET and Est-H objectives and
their parameter gradients from one fused op, :func:`fused_objective`) or ``"auto"`` (picked per
model and device: fused for every MLP it recognises on a CPU, else autograd there; batched on CUDA
for models without train-mode BatchNorm). The same recognised MLPs get their detached
explanations from :func:`fused_saliency` and their attacks' steps from the fused attack loop
(``engine._fused_attack``). New engines register with :func:`register_engine`; ``auto`` consults them
by priority, so an engine specialised for some models takes over exactly where it applies. The
ops ``backend`` (native kernel vs reference twin) is a separate, independent choice.
"""

from r2et_fast.engine._autograd import AutogradEngine
from r2et_fast.engine._base import (
    AUTO,
    GradientEngine,
    Gradients,
    check_engine,
    check_request,
    engine_names,
    get_engine,
    hessian_direction,
    register_engine,
    resolve_engine,
)
from r2et_fast.engine._batched import BatchedEngine
from r2et_fast.engine._fused_mlp import FusedEngine, fused_objective
from r2et_fast.engine._fused_saliency import fused_saliency
from r2et_fast.engine._modes import MODE_DEPENDENT_LAYERS, eval_mode, explanation_mode, mode_dependent
from r2et_fast.engine._modes import task_logits as _task_logits

register_engine(AutogradEngine(), priority=0)
register_engine(BatchedEngine(), priority=0)
# Consulted first by `auto`, where it prefers a model (for now it prefers none: see FusedEngine).
register_engine(FusedEngine(), priority=10)

# The engines known at import; `engine_names()` also lists engines registered later.
ENGINES = engine_names()


def compute_gradients(model, x, target, *, score: str, kappa: float | None = None,
                      engine: str = AUTO) -> Gradients:
    """:class:`Gradients` of ``model`` at ``x`` from the engine ``engine`` resolves to.

    A model in training mode is explained in eval mode (``Gradients.eval_mode`` says when that
    changed anything; :mod:`r2et_fast.engine._modes` gives the reasons).
    """
    check_request(model, x, score, kappa)
    with explanation_mode(model) as switched:
        grads = resolve_engine(engine, model, x).gradients(model, x, target, score=score, kappa=kappa)
    grads.eval_mode = switched
    return grads


def task_logits(model, x, grads: Gradients):
    """The logits of ``model`` at ``x`` for the task loss, in the model's own mode: ``grads.logits``
    unless the explanation passes ran in eval mode (then one forward pass in training mode)."""
    return _task_logits(model, x, grads.logits, grads.eval_mode)


__all__ = ["AUTO", "ENGINES", "MODE_DEPENDENT_LAYERS", "Gradients", "GradientEngine", "AutogradEngine",
           "BatchedEngine", "FusedEngine", "check_engine", "check_request", "compute_gradients",
           "engine_names", "eval_mode", "explanation_mode", "fused_objective", "fused_saliency", "get_engine",
           "hessian_direction", "mode_dependent", "register_engine", "resolve_engine", "task_logits"]
