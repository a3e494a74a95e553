"""ROC AUC against a brute-force pair count."""

from __future__ import annotations

import math

import pytest
import torch

from r2et_fast.metrics import prediction_auc, roc_auc


def brute_auc(scores, labels):
    pos = [s for s, l in zip(scores.tolist(), labels.tolist()) if l == 1]
    neg = [s for s, l in zip(scores.tolist(), labels.tolist()) if l != 1]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("ties", [False, True])
def test_matches_brute_force(ties):
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(200, generator=g, dtype=torch.float64)
    if ties:
        scores = (scores * 5).round()
    labels = (torch.rand(200, generator=g) < 0.4).long()
    assert math.isclose(roc_auc(scores, labels), brute_auc(scores, labels), rel_tol=1e-12)


def test_one_class_is_nan_and_bad_input():
    assert math.isnan(roc_auc(torch.rand(5), torch.ones(5, dtype=torch.long)))
    with pytest.raises(ValueError, match="labels must be a tensor"):
        roc_auc(torch.rand(5), torch.ones(4))
    with pytest.raises(ValueError, match="scores contains NaN"):
        roc_auc(torch.tensor([0.1, float("nan")]), torch.tensor([0, 1]))


def test_prediction_auc_of_a_perfect_model():
    x = torch.linspace(-1, 1, 50)[:, None]
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.bias.zero_()
    assert prediction_auc(model, x, y) == 1.0


def test_multiclass_auc_is_the_macro_one_vs_rest():
    import torch

    from r2et_fast.metrics import prediction_auc
    from r2et_fast.metrics._prediction import roc_auc
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(60, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (60,), generator=g)
    p = torch.softmax(logits, dim=1)
    want = sum(roc_auc(p[:, c], (y == c).long()) for c in range(4)) / 4
    assert abs(prediction_auc(lambda x: x, logits, y) - want) < 1e-12
    assert prediction_auc(lambda x: x, torch.eye(4, dtype=torch.float64)[y] * 10, y) == 1.0
    two = torch.randn(30, 2, generator=g, dtype=torch.float64)
    y2 = torch.randint(0, 2, (30,), generator=g)
    assert prediction_auc(lambda x: x, two, y2) == roc_auc(torch.softmax(two, 1)[:, 1], y2)
