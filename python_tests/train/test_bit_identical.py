"""``train(data, cfg)`` gives bit-identical parameters and logged losses to the training loop it
replaced, for every method: the checksums were recorded with that loop (see the JSON file). That
loop differentiated twice with autograd, so the runs name ``engine="autograd"`` (``auto`` picks the
fused engine for these MLPs, equal to rounding: python_tests/engine/test_fused_*.py).

BLAS kernels differ between CPU families and thread counts, so the runs use one thread and are
compared only where a fingerprint matmul gives the bits it gave where the checksums were recorded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from r2et_fast.datasets import Split, make_tabular
from r2et_fast.train import METHODS, TrainConfig, train

RECORDED = json.loads((Path(__file__).with_name("recorded_checksums.json")).read_text())["runs"]
FINGERPRINT = "0d23ae62963e"  # first 12 hex digits of _fingerprint() where the checksums were made

EXTRA = {"r2et_adaptive": dict(method="r2et", adaptive=True),
         "r2et_mm_exp": dict(method="r2et_mm", transform="exp", n_pairs=2),
         "est_h_logit": dict(method="est_h", score="logit"), "at3": dict(method="at", at_steps=3)}


def _digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _fingerprint() -> str:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 37, generator=g), torch.randn(37, 29, generator=g)
    image, kernel = torch.randn(2, 1, 28, 28, generator=g), torch.randn(4, 1, 5, 5, generator=g)
    conv = torch.nn.functional.conv2d(image, kernel)
    return hashlib.sha256((a @ b).numpy().tobytes() + conv.numpy().tobytes()).hexdigest()[:12]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    if _fingerprint() != FINGERPRINT:
        torch.set_num_threads(threads)
        pytest.skip("this CPU/BLAS rounds matmuls differently from where the checksums were recorded")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return make_tabular(n_samples=400, n_features=10, seed=0)


def _check(name: str, result) -> None:
    assert _digest(result.model) == RECORDED[name]["sha256"], f"{name}: parameters changed"
    assert [h["loss"] for h in result.history] == RECORDED[name]["losses"], f"{name}: logged losses changed"


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_bit_identical(data, method):
    _check(method, train(data, TrainConfig(method=method, epochs=2, batch_size=64, k=4, engine="autograd"),
                         progress=False))


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_variants_are_bit_identical(data, name):
    cfg = TrainConfig(epochs=2, batch_size=64, k=4, engine="autograd", **EXTRA[name])
    _check(name, train(data, cfg, progress=False))


@pytest.mark.parametrize("method", ["vanilla", "r2et"])
def test_cnn_is_bit_identical(method):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 28, 28, generator=g)
    y = (x.mean((1, 2, 3)) > x.mean()).long()
    img = Split(x_train=x[:64], y_train=y[:64], x_val=x[64:80], y_val=y[64:80], x_test=x[80:], y_test=y[80:])
    cfg = TrainConfig(method=method, arch="cnn", epochs=1, batch_size=32, k=20, lambda_hess=1e-4)
    _check("cnn_" + method, train(img, cfg, progress=False))
