"""The one seeded stratified splitter of every data set (r2et_fast.datasets.split).

The tabular splits are the project's committed results: ``TABULAR_SHA256`` pins them as they were
before the splitter was shared with MNIST and the graphs, so any change to the splitter that moves a
committed tabular number fails here.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from r2et_fast.datasets import Split, load_mnist, load_tabular, stratified_split
from r2et_fast.datasets.graphs import graph_pairs, make_connectomes
from r2et_fast.datasets.mnist import _raw as mnist_raw
from r2et_fast.datasets.split import check_split_fractions, round_half_up


def _sha256(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(np.ascontiguousarray(t.numpy()).tobytes())
    return h.hexdigest()


# sha256 of the float32 tensors' bytes with the default fractions (0.1 / 0.2); "y" is y_train, y_val
# and y_test in that order, "idx" the train, val and test row indices.
TABULAR_SHA256 = {
    ("adult", 0): {
        "x_train": "1ca2bb39754f8e16484969cc444830730e9804d39b46b09e9d20efa09a52f37a",
        "x_val": "4898a2f2123ff1dfb0d144abf63754da7d4d419e944ead135de8f877ba2d27e7",
        "x_test": "f4e5475cfc844e6128d09d644b939aee6d7db6fd9fa0491b73276b0beb48269e",
        "y": "e17b373257180a8bb28f97875425f77200b8894a535f3f1294254eb9fd808ccf",
        "idx": "fc6d1a984f446355edddfa1a26393440db7fdb2bae2db47ed2be9d6c8a432707",
    },
    ("adult", 1): {
        "x_train": "77bcbac4fc56cf34f585bd6f4a98aba3b1273405e95d5cae57996aa0c33e8758",
        "x_val": "8533abb66831959239d633e1636568dba5705fbe22f0cd189771737cfc2e14ed",
        "x_test": "f69e2c976df9b5205f25f285b3fa76582454339dac7db765a90266f637fd045d",
        "y": "bc10566f63be2b4ea099a29386db6308893caae1c2e4c765faa8659e87e39b30",
        "idx": "8e8272fc1724e67f87a131fea59a9116185af685d2455582c1452de80cb510b6",
    },
    ("bank", 0): {
        "x_train": "666453ec3af74093fa3107a6ce40ea1c6cb2f8a73f4a0ae8582e1acd1062edaa",
        "x_val": "2236976c6817c13868c7422e1a69b368c2d4faf7f85bf1385703755563aebcbf",
        "x_test": "ed0a2cae41b723b59fb45f3ea0b87e23cc005a681d30c2ef3e04ff83bf9c56ef",
        "y": "76936673f590611bb09e27a480eeac1639d529b0a9b4a1bd3c90d7c3971f7c90",
        "idx": "35c8c0665137436adae84467e2c41320450d070cb3a0713c5bbfb0c39b30c0c5",
    },
    ("bank", 1): {
        "x_train": "946b8fbdd4a9ae4fc3041102af3a13fe5d5ceea919888a131a465b10a6650ee9",
        "x_val": "183be27890b22d3eecc200acfd7f256c214eca91936627949c6dfbbc4778e3ac",
        "x_test": "cf97c8d4d38de1c5cf0e8e97f094fa5547fca48a71784de83a65dcc981608465",
        "y": "f4a7036b8ef729d8d455f8b924fde4538b1eedcfd9a5235aedb3a61e40253b6e",
        "idx": "b263a56bfdf9938495e6408c4725b52e550a648a2b0008e7bb23496ba2bb0f5f",
    },
    ("compas", 0): {
        "x_train": "b11426e4ec3756f9e78713f725f4175ba877ef596972fb57906fc9c98bcb10da",
        "x_val": "58074f98c608a2e1ce662f468f4439cadecd25d858e8cb3547727613f1038fe3",
        "x_test": "aca4a8fb3590890d772bb4bc4c8d77188a5078e7eca4e625ed107c3c1bb5cd4e",
        "y": "d55ce52c4157e5ceec9b332d55f11a738869cbed2ecb63407debdde9fc0280a1",
        "idx": "01a4bb1e4a4ecee000708ee39e31fa20560cf14c0a1029068ae4683b701edbdc",
    },
    ("compas", 1): {
        "x_train": "08632b12125c66305abe6c553298b4f8b58471a75834f08400332ed01a7d8709",
        "x_val": "bb50e7176614c70562784e37ce5e508116e51753adfbe28aca66470669e2a3ed",
        "x_test": "e60690e30306839e8d4e5452f655462a6888a2a654e9a8826138c82bb370c742",
        "y": "2ae99b5edd7327fa44a6a5b8de5c1b6126712c3f40ed517260a351182790bf40",
        "idx": "e5288f1292ec95026872500be3745f3db4bc1ff001667dc397dc9534b01017e4",
    },
}


@pytest.mark.parametrize("name,seed", sorted(TABULAR_SHA256))
def test_tabular_splits_are_the_committed_ones(name, seed):
    d = load_tabular(name, seed=seed)
    pinned = TABULAR_SHA256[(name, seed)]
    assert _sha256(d.train_index, d.val_index, d.test_index) == pinned["idx"]
    assert _sha256(d.x_train) == pinned["x_train"]
    assert _sha256(d.x_val) == pinned["x_val"]
    assert _sha256(d.x_test) == pinned["x_test"]
    assert _sha256(d.y_train, d.y_val, d.y_test) == pinned["y"]


def _labels(counts: list[int], seed: int = 0) -> torch.Tensor:
    """Class ids with ``counts[c]`` members of class c, in a shuffled order."""
    y = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]


# ---- the rule --------------------------------------------------------------------------------------

@pytest.mark.parametrize("val,test", [(0.1, 0.2), (0.2, 0.2), (0.25, 0.25), (0.0, 0.3), (0.3, 0.0)])
def test_stratified_disjoint_and_covering(val, test):
    counts = [50, 31, 7, 120]
    y = _labels(counts)
    train, va, te = stratified_split(y, val, test, seed=3)
    for part in (train, va, te):
        assert part.dtype == torch.int64 and part.device.type == "cpu"
    every = torch.cat([train, va, te])
    assert torch.equal(every.sort().values, torch.arange(len(y)))  # disjoint and covering
    for c, n in enumerate(counts):
        n_test, n_val = round_half_up(test * n), round_half_up(val * n)
        assert int((y[te] == c).sum()) == n_test
        assert int((y[va] == c).sum()) == n_val
        assert int((y[train] == c).sum()) == n - n_test - n_val
    assert (len(va) == 0) == (val == 0) and (len(te) == 0) == (test == 0)


def test_rounding_is_half_up_not_to_even():
    assert [round_half_up(x) for x in (0.5, 1.5, 2.5, 2.4999, 3.0)] == [1, 2, 3, 2, 3]
    # 25 rows: 0.1 * 25 = 2.5 rounds to 3 (Python's round gives 2); 0.2 * 25 = 5
    train, val, test = stratified_split(torch.zeros(25, dtype=torch.long), 0.1, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (17, 3, 5)
    # 15 rows: 0.3 * 15 = 4.5 -> 5 and 0.1 * 15 = 1.5 -> 2
    train, val, test = stratified_split(torch.zeros(15, dtype=torch.long), 0.3, 0.1, seed=0)
    assert (len(train), len(val), len(test)) == (8, 5, 2)


def test_order_test_then_val_then_train_and_shuffled():
    # one class: the class permutation's head is test, then val, then train; each is reshuffled
    y = torch.zeros(40, dtype=torch.long)
    g = torch.Generator().manual_seed(7)
    perm = torch.randperm(40, generator=g)
    train, val, test = stratified_split(y, 0.25, 0.25, seed=7)
    assert set(test.tolist()) == set(perm[:10].tolist())
    assert set(val.tolist()) == set(perm[10:20].tolist())
    assert set(train.tolist()) == set(perm[20:].tolist())
    assert torch.equal(train, perm[20:][torch.randperm(20, generator=g)])
    # several classes: not grouped by class after the final shuffle
    y = _labels([30, 30])
    train, _, _ = stratified_split(y, 0.1, 0.1, seed=0)
    assert not torch.equal(y[train], y[train].sort().values)


def test_seeded_and_machine_independent():
    y = _labels([40, 25, 9])
    a = stratified_split(y, 0.2, 0.2, seed=5)
    b = stratified_split(y.numpy(), 0.2, 0.2, seed=5)  # numpy labels: the same split
    c = stratified_split(y, 0.2, 0.2, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])
    # an int seed is a fresh CPU generator seeded with it
    d = stratified_split(y, 0.2, 0.2, seed=torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a, d))


def test_generator_advances_for_the_caller():
    y = _labels([20, 20])
    g = torch.Generator().manual_seed(0)
    stratified_split(y, 0.2, 0.2, seed=g)
    after = torch.randint(1000, (5,), generator=g)
    fresh = torch.Generator().manual_seed(0)
    assert not torch.equal(after, torch.randint(1000, (5,), generator=fresh))


def test_label_values_need_not_be_contiguous():
    y = torch.tensor([-1, 5, 5, -1, 5, -1, 5, -1, 5, -1] * 3)
    train, val, test = stratified_split(y, 0.2, 0.2, seed=0)
    for part in (train, val, test):
        assert set(y[part].tolist()) == {-1, 5}


# ---- tiny classes and bad arguments ----------------------------------------------------------------

def test_tiny_class_is_refused_with_its_size():
    y = _labels([20, 2])
    with pytest.raises(ValueError, match=r"class 1 has 2 rows: too few for val_fraction=0.2"):
        stratified_split(y, 0.2, 0.2, seed=0)
    with pytest.raises(ValueError, match="class 0 has 1 rows"):
        stratified_split(torch.tensor([0, 1, 1, 1, 1, 1]), 0.4, 0.4, seed=0)
    # a zero fraction asks nothing of the class: an empty split is fine
    train, val, test = stratified_split(y, 0.0, 0.5, seed=0)
    assert len(val) == 0 and set(y[test].tolist()) == {0, 1} and set(y[train].tolist()) == {0, 1}


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"val_fraction": -0.1}, ValueError, "val_fraction"),
    ({"val_fraction": 1.0}, ValueError, "val_fraction"),
    ({"test_fraction": float("nan")}, ValueError, "test_fraction"),
    ({"test_fraction": "0.2"}, TypeError, "test_fraction must be a real number"),
    ({"val_fraction": True}, TypeError, "val_fraction"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, ValueError, r"val_fraction \+ test_fraction"),
    ({"seed": 1.5}, TypeError, "seed must be an int or a torch.Generator"),
    ({"seed": None}, TypeError, "seed"),
    ({"labels": torch.zeros(3, 2, dtype=torch.long)}, ValueError, "labels must be a 1-D"),
    ({"labels": torch.zeros(5)}, ValueError, "labels must be an integer"),
    ({"labels": torch.zeros(5, dtype=torch.bool)}, ValueError, "labels must be an integer"),
    ({"labels": torch.zeros(0, dtype=torch.long)}, ValueError, "labels is empty"),
    ({"labels": [0, 1, 0, 1]}, TypeError, "labels must be a torch.Tensor or numpy array"),
])
def test_bad_arguments_name_themselves(kwargs, exc, match):
    args = {"labels": _labels([10, 10]), "val_fraction": 0.2, "test_fraction": 0.2, "seed": 0, **kwargs}
    with pytest.raises(exc, match=match):
        stratified_split(**args)


def test_loader_fraction_rules():
    assert check_split_fractions(0.1, 0.2) == (0.1, 0.2)
    assert check_split_fractions(0, 0.2, allow_zero=True) == (0.0, 0.2)
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \(0, 1\)"):
        check_split_fractions(0.0, 0.2)


# ---- every data set uses it ------------------------------------------------------------------------

def test_mnist_uses_the_splitter():
    images, labels = mnist_raw(None)
    d = load_mnist(seed=2)
    train, val, test = stratified_split(labels, 0.1, 0.2, seed=2)
    for part, y in ((train, d.y_train), (val, d.y_val), (test, d.y_test)):
        assert torch.equal(labels[part], y)
    assert torch.equal((images[test].float() / 255.0).unsqueeze(1), d.x_test)


def test_graphs_use_the_splitter():
    adj, labels = make_connectomes(n_graphs=40, n_nodes=10, n_communities=2, seed=1)
    split = graph_pairs(adj, labels, n_pairs=20, seed=4)
    train, val, test = stratified_split(labels, 0.2, 0.2, seed=torch.Generator().manual_seed(4))
    assert torch.equal(split.graphs_train, train)
    assert torch.equal(split.graphs_val, val)
    assert torch.equal(split.graphs_test, test)
    # the default evaluation pair counts use the same rounding rule
    assert len(split.y_val) == max(2, round_half_up(20 * 0.2 / 0.6)) == 7
    assert math.isclose(len(split.y_val) / len(split.y_train), 0.35)


def test_split_record():
    s = Split(*(torch.zeros(3, 2, 5) if i % 2 == 0 else torch.zeros(3) for i in range(6)))
    assert s.n_features == 10 and s.input_shape == (2, 5)
