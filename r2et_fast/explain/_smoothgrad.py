"""SmoothGrad: the base explanation averaged over Gaussian perturbations of the input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from r2et_fast._validation import (
    check_choice,
    check_int,
    check_nonnegative_float,
    check_optional_positive_int,
    check_positive_int,
)

from ._base import Explainer, Model, abs_and_reduce, as_grad_leaf, graph_input
from ._score import EXPLAINER_SCORE, predict, score_gradient

BASES = ("saliency", "gradxinput")


def _make_generator(
    seed: int | None, generator: torch.Generator | None, device: torch.device
) -> torch.Generator:
    """A private generator, so the global RNG is never consumed or reseeded."""
    if generator is not None:
        if generator.device.type != device.type:
            raise ValueError(
                f"generator is on device {generator.device} but inputs are on device {device}"
            )
        return generator
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()  # non-deterministic seed from the OS, not from the global generator
    else:
        gen.manual_seed(int(seed))
    return gen


class SmoothGrad(Explainer):
    """SmoothGrad: I(x) = (1/m) sum_{k=1..m} I_base(x + eps_k), eps_k ~ N(0, stdev^2 I).

    Args:
        model: callable mapping a batch (B, ...) to class scores (B, C).
        base: ``"saliency"`` (|ds/dx| by default) or ``"gradxinput"`` (ds/dx * x evaluated at
            the noisy point x + eps).
        n_samples: number m of noisy copies (default 50).
        stdev: noise standard deviation sigma, in input units (default 0.1).
        seed: seed of a private ``torch.Generator`` made afresh on every call, so repeated calls
            give the same result. None (with no ``generator``) draws a fresh OS seed.
        generator: a ``torch.Generator`` on the inputs' device to draw the noise from (it
            advances between calls). Give at most one of ``seed`` and ``generator``.
        chunk_size: number of noisy copies per forward pass (B * chunk_size rows); None = all
            m at once. The noise is drawn one copy at a time, so the result does not depend on
            ``chunk_size`` (up to summation rounding).
        score, reduce_channels, normalize: as in :class:`Saliency`.
        abs: take |.| of each noisy map before averaging; None means the base method's default
            (True for saliency, False for grad x input).

    ``abs`` and ``reduce_channels`` are applied to each noisy map (they are part of the base
    method); ``normalize`` is applied once to the averaged map. With ``target=None`` the class
    is the prediction at the clean input x, kept fixed for all noisy copies.
    """

    _defaults = {
        "base": "saliency",
        "n_samples": 50,
        "stdev": 0.1,
        "seed": None,
        "generator": None,
        "chunk_size": None,
        "score": EXPLAINER_SCORE,
        "abs": None,
        "reduce_channels": None,
        "normalize": False,
    }

    def __init__(
        self,
        model: Model,
        base: str = "saliency",
        n_samples: int = 50,
        stdev: float = 0.1,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        chunk_size: int | None = None,
        score: str = EXPLAINER_SCORE,
        abs: bool | None = None,  # noqa: A002 - Captum-style name
        reduce_channels: str | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__(
            model,
            base=base,
            n_samples=n_samples,
            stdev=stdev,
            seed=seed,
            generator=generator,
            chunk_size=chunk_size,
            score=score,
            abs=abs,
            reduce_channels=reduce_channels,
            normalize=normalize,
        )

    def _check_params(self, params: Mapping[str, Any]) -> None:
        self._check_common(params)
        check_choice(params["base"], "base", BASES)
        check_positive_int(params["n_samples"], "n_samples")
        check_nonnegative_float(params["stdev"], "stdev")
        check_optional_positive_int(params["chunk_size"], "chunk_size")
        seed, generator = params["seed"], params["generator"]
        if seed is not None:
            check_int(seed, "seed")
            if generator is not None:
                raise ValueError("seed and generator are mutually exclusive; give at most one")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be None or a torch.Generator, got {type(generator).__name__}"
            )

    def _attribute(self, inputs, target, create_graph, params):
        n_samples = params["n_samples"]
        chunk = params["chunk_size"] or n_samples
        stdev = params["stdev"]
        times_input = params["base"] == "gradxinput"
        use_abs = params["abs"] if params["abs"] is not None else not times_input
        gen = _make_generator(params["seed"], params["generator"], inputs.device)

        x = graph_input(inputs, create_graph)
        if target is None:
            target = predict(self.model, inputs)
        batch, rest = x.shape[0], x.shape[1:]

        total = None
        for start in range(0, n_samples, chunk):
            k = min(chunk, n_samples - start)
            # One draw per copy: the random stream is then independent of the chunking.
            noise = torch.stack(
                [
                    torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
                    for _ in range(k)
                ]
            )
            z = as_grad_leaf((x.unsqueeze(0) + stdev * noise).reshape(k * batch, *rest))
            grad, _ = score_gradient(self.model, z, target.repeat(k), params["score"], create_graph)
            attr = grad * z if times_input else grad
            attr = abs_and_reduce(attr, use_abs, params["reduce_channels"])
            part = attr.reshape(k, batch, *attr.shape[1:]).sum(dim=0)
            total = part if total is None else total + part
        return total / n_samples


def smoothgrad(
    model: Model,
    inputs: torch.Tensor,
    target: int | torch.Tensor | None = None,
    create_graph: bool = False,
    **kwargs: Any,
) -> torch.Tensor:
    """Functional form of :class:`SmoothGrad`."""
    return SmoothGrad(model, **kwargs).attribute(inputs, target, create_graph)
