"""r2et_fast: fast, tested tools for the stability of saliency explanations.

Public API: ranking and similarity ops (``r2et_fast.ops``, also re-exported here), batched metric
callables (``r2et_fast.metrics``), differentiable explanations (``r2et_fast.explain``), the
one-call training loss (``R2ETLoss``, ``r2et_loss``), and the backend switch (``set_backend``,
``use_backend``, ``backend``), and the sound top-k certificate (``sound_saliency_bounds``,
``sound_topk_radius``, ``sound_precision_at_k``, ``sound_certify``; the rest of the bounds live in
``r2et_fast.bounds``).
"""

from r2et_fast import ops
from r2et_fast._backend import BACKENDS, backend, set_backend, use_backend
from r2et_fast._ops import native_available
from r2et_fast.bounds import (
    SaliencyBounds,
    SoundCertificate,
    sound_certify,
    sound_precision_at_k,
    sound_saliency_bounds,
    sound_topk_radius,
)
from r2et_fast.explain import from_captum
from r2et_fast.ops._table import public_names as _public_op_names
from r2et_fast.thickness import ThicknessResult, topk_thickness
from r2et_fast.train import R2ETLoss, r2et_loss

# Every public op of the ops table (r2et_fast/ops/_table.py), as r2et_fast.<name>.
for _name in _public_op_names():
    globals()[_name] = getattr(ops, _name)
del _name

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "backend",
    "set_backend",
    "use_backend",
    "native_available",
    *_public_op_names(),
    "topk_thickness",
    "ThicknessResult",
    "R2ETLoss",
    "r2et_loss",
    "from_captum",
    "SaliencyBounds",
    "SoundCertificate",
    "sound_certify",
    "sound_precision_at_k",
    "sound_saliency_bounds",
    "sound_topk_radius",
]
