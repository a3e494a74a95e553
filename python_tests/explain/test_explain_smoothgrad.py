"""SmoothGrad: reduction to the base method, noise semantics, reproducibility, chunking."""

from __future__ import annotations

import pytest
import torch

from r2et_fast.explain import SmoothGrad, gradient_x_input, saliency, smoothgrad


@pytest.mark.parametrize("base", ["saliency", "gradxinput"])
def test_zero_noise_equals_base(mlp, x, base):
    want = {"saliency": saliency, "gradxinput": gradient_x_input}[base](mlp, x, 1)
    got = smoothgrad(mlp, x, 1, base=base, stdev=0.0, n_samples=6, seed=0)
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-14)


def test_noise_semantics_on_linear_model(linear, x):
    # grad x input of a linear model at x + eps is W_c * (x + eps): the mean is explicit.
    n, stdev, seed = 7, 0.3, 11
    g = torch.Generator().manual_seed(seed)
    noise = torch.stack([torch.randn(x.shape, generator=g, dtype=x.dtype) for _ in range(n)])
    want = linear.weight.detach()[2] * (x + stdev * noise.mean(0))
    got = smoothgrad(linear, x, 2, base="gradxinput", n_samples=n, stdev=stdev, seed=seed)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_abs_is_taken_per_noisy_sample(mlp, x):
    sg = SmoothGrad(mlp, n_samples=8, stdev=0.5, seed=2, score="prob")
    signed = sg.attribute(x, 0, abs=False)
    absolute = sg.attribute(x, 0)
    assert (absolute >= signed.abs() - 1e-15).all()
    assert (absolute > signed.abs() + 1e-9).any()


def test_seed_reproducible_and_distinct(mlp, x):
    sg = SmoothGrad(mlp, n_samples=5, stdev=0.2, seed=123)
    first = sg.attribute(x, 0)
    assert torch.equal(first, sg.attribute(x, 0))
    assert torch.equal(first, smoothgrad(mlp, x, 0, n_samples=5, stdev=0.2, seed=123))
    other = smoothgrad(mlp, x, 0, n_samples=5, stdev=0.2, seed=124)
    assert not torch.allclose(first, other)


def test_unseeded_calls_differ_and_spare_global_rng(mlp, x):
    state = torch.get_rng_state()
    a = smoothgrad(mlp, x, 0, n_samples=3)
    b = smoothgrad(mlp, x, 0, n_samples=3)
    assert not torch.allclose(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_generator_is_used_and_advances(mlp, x):
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = smoothgrad(mlp, x, 0, n_samples=4, generator=g1)
    assert torch.equal(a, smoothgrad(mlp, x, 0, n_samples=4, generator=g2))
    assert not torch.allclose(a, smoothgrad(mlp, x, 0, n_samples=4, generator=g1))


@pytest.mark.parametrize("base", ["saliency", "gradxinput"])
def test_chunking_does_not_change_result(mlp, x, base):
    kw = {"base": base, "n_samples": 10, "stdev": 0.4, "seed": 9}
    ref = smoothgrad(mlp, x, 1, **kw)
    for chunk in (1, 3, 4, 10, 64):
        got = smoothgrad(mlp, x, 1, chunk_size=chunk, **kw)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_forward_batch_bounded_by_chunk(mlp, x):
    rows = []

    def spy(inp):
        rows.append(inp.shape[0])
        return mlp(inp)

    SmoothGrad(spy, n_samples=7, chunk_size=3, seed=0).attribute(x, 0)
    assert rows == [15, 15, 5]


def test_target_none_uses_clean_prediction(mlp, x):
    pred = mlp(x).argmax(1)
    kw = {"n_samples": 4, "stdev": 2.0, "seed": 1}
    torch.testing.assert_close(smoothgrad(mlp, x, **kw), smoothgrad(mlp, x, pred, **kw))


def test_reduce_and_normalize_images(conv, images):
    out = smoothgrad(conv, images, 0, n_samples=3, seed=0, reduce_channels="max", normalize=True)
    assert out.shape == (2, 8, 8)
    torch.testing.assert_close(out.sum((1, 2)), torch.ones(2, dtype=torch.float64))
