import pytest
import torch

from r2et_fast.datasets import load_mnist, mnist_pairs


def test_single_digits_split_is_stratified_seeded_and_in_range():
    a = load_mnist(seed=3)
    b = load_mnist(seed=3)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert a.x_train.shape[1:] == (1, 28, 28) and a.input_shape == (1, 28, 28) and a.n_features == 784
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 10_000
    assert 0 <= a.x_train.min() and a.x_train.max() <= 1
    share = a.y_test.bincount(minlength=10).double() / len(a.y_test)
    full = torch.cat([a.y_train, a.y_val, a.y_test]).bincount(minlength=10).double() / 10_000
    assert torch.allclose(share, full, atol=0.01)
    assert not torch.equal(load_mnist(seed=4).x_test, a.x_test)


def test_digit_subset_relabels_to_indices():
    d = load_mnist((3, 8))
    n = len(d.y_train) + len(d.y_val) + len(d.y_test)
    assert n == 1032 + 944
    assert set(d.y_train.tolist()) == {0, 1}


def test_pairs_are_balanced_and_labelled_by_digit_identity():
    d = mnist_pairs(n_pairs=200, seed=1)
    assert d.x_train.shape == (140, 2, 28, 28) and d.x_val.shape[0] == 20 and d.x_test.shape[0] == 40
    for y in (d.y_train, d.y_val, d.y_test):
        assert y.sum() * 2 == len(y)
    # the label says whether both images are 3s or both 8s: check with the single-digit split's images
    single = load_mnist((3, 8), seed=1)
    lookup = {tuple(img.flatten().tolist()): int(c) for img, c in zip(single.x_train, single.y_train)}
    for pair, same in zip(d.x_train[:40], d.y_train[:40]):
        a, b = (lookup[tuple(img.flatten().tolist())] for img in pair)
        assert (a == b) == bool(same)
    assert torch.equal(mnist_pairs(n_pairs=200, seed=1).x_test, d.x_test)


def test_pairs_never_mix_splits():
    d = mnist_pairs(n_pairs=300, seed=2)
    train = {tuple(img.flatten().tolist()) for img in d.x_train.reshape(-1, 1, 28, 28)}
    test = {tuple(img.flatten().tolist()) for img in d.x_test.reshape(-1, 1, 28, 28)}
    assert not train & test


@pytest.mark.parametrize("kwargs, match", [
    ({"digits": (3, 3)}, "digits"), ({"digits": (3, 11)}, "digits"), ({"digits": (3,)}, "digits"),
    ({"n_pairs": 5}, "n_pairs"), ({"val_fraction": 0.0}, "val_fraction"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "val_fraction"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mnist_pairs(**kwargs)


def test_corrupt_file_is_refused(tmp_path):
    (tmp_path / "mnist_10k.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="mnist_10k.npz"):
        load_mnist(data_dir=tmp_path)
