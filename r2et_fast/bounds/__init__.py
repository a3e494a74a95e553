"""Upper bounds on attribution deviation (Wang & Kong, CVPR 2023) and certificates (docs/spec.md §7).

For an attribution g (signed saliency, gradient x input or IG of a model's score at a fixed class)
and J = dg/dx (the paper's H = J^T, P = H H^T = J^T J):

* :func:`top_singular`: xi_max and v_max of J by batched Lanczos on Jacobian-vector products
  (no J formed); ``solver="exact"`` builds J for small n (the oracle).
* :func:`abs_sum_p`: sum_ij |P_ij| (the l_inf bound), J built block by block, bounded size.
* Bounds: :func:`l2_bound`, :func:`lp_bound`, :func:`linf_bound`, :func:`cosine_bound`,
  :func:`generalization_factor`, :func:`certified_topk_radius` (first-order certificate).
* Sound (guaranteed) bounds and certificates: :func:`sound_saliency_bounds` (interval bounds of
  |ds/dx| or |ds/dx * x| on the whole ball), :func:`sound_topk_radius`,
  :func:`sound_precision_at_k` and :func:`sound_certify` (a :class:`SoundCertificate`,
  ``kind = "sound"``).
* :func:`certify`: all of them for a batch (warning with :class:`VanishingJacobianWarning` where
  xi_max = 0, e.g. the logit saliency of a ReLU network); :func:`validate_bounds`: attacks against them.

The Wang & Kong bounds and :func:`certify` are first-order (exact for a linear g); with the label
constraint they take the same values, since the maximiser (+-eps v_max, or a box corner) stays
feasible (paper §4.3).
"""

from ._args import ATTRIBUTIONS
from ._bounds import (
    CosineBound,
    certified_topk_radius,
    cosine_bound,
    generalization_factor,
    l2_bound,
    linf_bound,
    lp_bound,
)
from ._certify import Certificate, certify
from ._sound import SOUND_METHODS, SOUND_SCORES, SaliencyBounds, sound_saliency_bounds
from ._sound_certify import SoundCertificate, sound_certify, sound_precision_at_k, sound_topk_radius
from ._spectral import SpectralResult, abs_sum_p, attribution, attribution_jacobian, top_singular
from ._validate import ValidationReport, validate_bounds
from ._vanishing import VanishingJacobianWarning

__all__ = [
    "ATTRIBUTIONS",
    "SOUND_METHODS",
    "SOUND_SCORES",
    "Certificate",
    "CosineBound",
    "SaliencyBounds",
    "SoundCertificate",
    "SpectralResult",
    "ValidationReport",
    "VanishingJacobianWarning",
    "abs_sum_p",
    "attribution",
    "attribution_jacobian",
    "certified_topk_radius",
    "certify",
    "cosine_bound",
    "generalization_factor",
    "l2_bound",
    "linf_bound",
    "lp_bound",
    "sound_certify",
    "sound_precision_at_k",
    "sound_saliency_bounds",
    "sound_topk_radius",
    "top_singular",
    "validate_bounds",
]
