"""Training configuration: the serialisable record of a run, for every method (docs/spec.md §3, §4).

The methods themselves are classes in ``_methods``; a config names one and carries every
hyper-parameter, so a saved run can be rebuilt from its JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from r2et_fast._device import check_device_name
from r2et_fast.engine import AUTO, check_engine
from r2et_fast.explain._score import TRAINING_SCORE
from r2et_fast.models import ACTIVATIONS, ARCHITECTURES
from r2et_fast.train._methods import method_labels, method_names

# The registered training methods, and their paper names for tables.
METHODS = method_names()
METHOD_LABELS = method_labels()


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run; every method reads the fields it needs.

    The regularised objective is CE - lambda_gap * G_k + lambda_hess * H (R2ET), where G_k is the
    *mean* pair gap (the op's sum divided by the number of pairs, so lambda_gap does not scale with
    k or n) and H the finite-difference Hessian norm; Est-H uses lambda_hess alone, Exact-H and SSR
    ``lambda_reg``.
    """

    method: str = "vanilla"
    arch: str = "mlp"               # mlp | cnn | avgpool_cnn | siamese_cnn | siamese_gcn (r2et_fast.models)
    activation: str | None = None   # None: the architecture's default; SP always uses softplus
    node_features: str = "identity"  # siamese_gcn: identity | profile
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    hidden: int = 32
    k: int = 8
    score: str = TRAINING_SCORE     # the explained score s (the authors' code uses the loss)
    lambda_gap: float = 0.3         # R2ET family: weight of -G_k (tuned on Adult's validation split)
    lambda_hess: float = 0.1        # R2ET, Est-H: weight of H
    lambda_reg: float = 1.0         # Exact-H, SSR: weight of their term
    kappa: float = 1e-3             # finite-difference step of H
    transform: str = "linear"       # gap transform: linear | exp
    n_pairs: int | None = None      # k' of R2ET-mm (default min(k, n - k))
    adaptive: bool = False          # lambda <- |lambda (CE + 1) / term| per batch (authors' _adapt)
    weight_decay: float = 1e-3      # WD
    softplus_beta: float = 10.0     # SP
    at_eps: float = 0.1             # AT: linf budget of the inner ERAttack
    at_alpha: float = 0.05          # AT: its step size (l2-normalised steps)
    at_steps: int = 1               # AT: its iterations
    exact_h_max_features: int = 64  # Exact-H refuses larger inputs (n backward passes per batch)
    engine: str = AUTO              # how g(x), g(x + kappa v) are computed (r2et_fast.engine)
    backend: str | None = None      # ops: native kernels or reference twins (None: the global choice)
    # Where the model trains: "auto" (CUDA when available; a Trainer given a model: the model's
    # device), "cpu", "cuda[:N]" or a torch.device. Placement, not a hyper-parameter: left out of
    # to_dict and of equality, so a checkpoint resumes and a saved model loads on another device
    # (the cache keys of the experiments add the device type where it changes results).
    device: str | torch.device = field(default="auto", compare=False)

    def __post_init__(self) -> None:
        if self.method not in method_names():
            raise ValueError(f"method must be one of {method_names()}, got {self.method!r}")
        check_engine(self.engine)
        check_device_name(self.device, "device")
        for name in ("epochs", "batch_size", "hidden", "k", "at_steps", "exact_h_max_features"):
            value, least = getattr(self, name), 0 if name == "epochs" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("lr", "kappa"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("lambda_gap", "lambda_hess", "lambda_reg", "weight_decay", "at_eps", "at_alpha"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be None or one of {ACTIVATIONS}, got {self.activation!r}")
        if self.transform not in ("linear", "exp"):
            raise ValueError(f"transform must be 'linear' or 'exp', got {self.transform!r}")

    def to_dict(self) -> dict:
        """The run's record: every field but ``device`` (see its comment)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "device"}

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The config of ``data`` (fields missing from an older record take their defaults)."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**data)
