"""R2ETLoss: the trainer's objective as one call, for any model, in train or eval mode."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from r2et_fast import R2ETLoss, r2et_loss
from r2et_fast.engine import mode_dependent
from r2et_fast.train import TrainConfig, get_method, loss_methods

N_FEATURES = 10


def mlp(*extra: nn.Module, classes: int = 2) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(N_FEATURES, 16), *extra, nn.Softplus(beta=5.0),
                         nn.Linear(16, classes)).double()


def batch(b: int = 24, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, N_FEATURES, generator=g, dtype=torch.float64),
            torch.randint(0, 2, (b,), generator=g))


def by_hand(model, x, y, k=3, lambda_gap=0.3, lambda_hess=0.1, kappa=1e-3):
    """R2ET's objective written out with plain autograd (docs/spec.md §3), independently."""
    z = x.clone().requires_grad_()
    logits = model(z)
    g = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), z, create_graph=True)[0]
    v = torch.sign(g.detach()) / N_FEATURES ** 0.5
    z2 = (x + kappa * v).requires_grad_()
    g2 = torch.autograd.grad(F.cross_entropy(model(z2), y, reduction="sum"), z2, create_graph=True)[0]
    hess = ((g2 - g).norm(dim=1) / kappa).mean()
    sal = g.abs()
    top = sal.detach().argsort(dim=1, descending=True)[:, :k]
    in_top = torch.zeros_like(sal, dtype=torch.bool).scatter(1, top, True)
    n = sal.shape[1]
    gap = ((n - k) * (sal * in_top).sum(1) - k * (sal * ~in_top).sum(1)) / (k * (n - k))
    ce = F.cross_entropy(logits, y)
    return ce - lambda_gap * gap.mean() + lambda_hess * hess, ce, gap.mean(), hess


def test_r2et_loss_is_the_objective_written_out():
    model, (x, y) = mlp(), batch()
    loss = R2ETLoss(k=3)(model, x, y)
    expected, ce, gap, hess = by_hand(model, x, y)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    want = torch.autograd.grad(expected, list(model.parameters()))
    for a, b in zip(grads, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_gap_is_scaled_as_the_trainer_scales_it():
    model, (x, y) = mlp(), batch()
    f = R2ETLoss(k=3)
    f(model, x, y)
    _, _, gap, _ = by_hand(model, x, y)
    torch.testing.assert_close(f.parts["gap"], gap.detach(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("method", loss_methods())
def test_every_loss_method_is_the_trainers(method):
    model, (x, y) = mlp(), batch()
    cfg = TrainConfig(method=method, k=3, at_steps=2)
    want, parts = get_method(cfg)(model, x, y, step_seed=5)
    got = R2ETLoss(method, k=3, at_steps=2)(model, x, y, step_seed=5)
    assert got.dim() == 0
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    got.backward()  # a scalar with its graph: the README's loop works as written
    assert all(p.grad is not None for p in model.parameters())


def test_function_form_and_pairs_override():
    model, (x, y) = mlp(), batch()
    a = r2et_loss(model, x, y, k=3, pairs="mm")
    b = R2ETLoss("r2et_mm", k=3)(model, x, y)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    assert not torch.allclose(a, R2ETLoss(k=3)(model, x, y))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"method": "sp"}, "not a loss"),
    ({"method": "wd"}, "weight_decay"),
    ({"method": "nope"}, "method"),
    ({"method": "est_h", "pairs": "mm"}, "pairs"),
    ({"pairs": "some"}, "pairs"),
    ({"k": 0}, "k"),
    ({"score": "margin"}, "score"),
    ({"engine": "warp"}, "engine"),
])
def test_bad_hyper_parameters_name_the_argument(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        R2ETLoss(**kwargs)


@pytest.mark.parametrize("y, fragment", [
    (torch.zeros(24), "y must be an integer"),
    (torch.zeros(23, dtype=torch.long), r"y must have shape \(24,\)"),
    ([0] * 23, "y must hold one label per sample"),
    (torch.full((24,), -1), "non-negative"),
])
def test_bad_labels_name_y(y, fragment):
    model, (x, _) = mlp(), batch()
    with pytest.raises(ValueError, match=fragment):
        R2ETLoss()(model, x, y)


def test_integer_labels_of_any_width():
    model, (x, y) = mlp(), batch()
    a = R2ETLoss(k=3)(model, x, y)
    b = R2ETLoss(k=3)(model, x, y.to(torch.int32))
    c = R2ETLoss(k=3)(model, x, y.tolist())
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_single_output_model_uses_bce():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(N_FEATURES, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x, y = batch()
    f = R2ETLoss(k=3)
    loss = f(model, x, y)
    ce = F.binary_cross_entropy_with_logits(model(x)[:, 0], y.double())
    torch.testing.assert_close(f.parts["ce"], ce.detach())
    loss.backward()


# ---- train mode ------------------------------------------------------------------------------

def buffers(model):
    return {name: b.clone() for name, b in model.named_buffers()}


def test_batchnorm_statistics_update_once_per_step():
    model = mlp(nn.BatchNorm1d(16))
    x, y = batch()
    plain = copy.deepcopy(model).train()
    plain(x)  # what one ordinary training forward does to the running statistics
    model.train()
    for method in ("r2et", "est_h", "r2et_noh", "exact_h", "ssr"):
        m = copy.deepcopy(model)
        R2ETLoss(method, k=3)(m, x, y).backward()
        for name, b in m.named_buffers():
            torch.testing.assert_close(b, dict(plain.named_buffers())[name], rtol=0, atol=0,
                                       msg=f"{method}: buffer {name}")
        assert m.training and all(sub.training for sub in m.modules())


def test_adversarial_training_updates_statistics_once_at_the_attack_point():
    model = mlp(nn.BatchNorm1d(16)).train()
    x, y = batch()
    R2ETLoss("at", k=3, at_steps=3)(model, x, y).backward()
    assert int(model[1].num_batches_tracked) == 1  # the inner attack ran in eval mode
    assert model.training and model[1].training


def test_batchnorm_explanation_terms_are_the_eval_models():
    model = mlp(nn.BatchNorm1d(16))
    x, y = batch()
    with torch.no_grad():  # running statistics away from their initial values
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    frozen, trained = copy.deepcopy(model).eval(), copy.deepcopy(model).train()
    f = R2ETLoss(k=3)
    f(model.train(), x, y)
    evaluated = R2ETLoss(k=3)
    evaluated(frozen, x, y)
    for term in ("gap", "hess"):
        torch.testing.assert_close(f.parts[term], evaluated.parts[term], rtol=1e-12, atol=0)
    # ... while CE is the train-mode CE (batch statistics)
    train_ce = F.cross_entropy(trained(x), y)
    torch.testing.assert_close(f.parts["ce"], train_ce.detach(), rtol=1e-12, atol=0)
    assert not torch.allclose(f.parts["ce"], evaluated.parts["ce"])


def test_dropout_does_not_enter_the_hessian_term():
    model = mlp(nn.Dropout(0.5))
    x, y = batch()
    f, e = R2ETLoss(k=3), R2ETLoss(k=3)
    f(model.train(), x, y)
    e(model.eval(), x, y)
    torch.testing.assert_close(f.parts["hess"], e.parts["hess"], rtol=1e-12, atol=0)
    torch.testing.assert_close(f.parts["gap"], e.parts["gap"], rtol=1e-12, atol=0)
    # the task loss sees dropout: the same RNG state gives the same train-mode CE as a plain forward
    torch.manual_seed(3)
    f(model.train(), x, y)
    torch.manual_seed(3)
    ce = F.cross_entropy(model(x), y)
    torch.testing.assert_close(f.parts["ce"], ce.detach(), rtol=1e-12, atol=0)


def test_mixed_modes_are_restored_per_module():
    model = mlp(nn.BatchNorm1d(16), nn.Dropout(0.1)).train()
    model[1].eval()  # a frozen BatchNorm inside a training model
    R2ETLoss(k=3)(model, *batch())
    assert model.training and not model[1].training and model[2].training


class UserMLP(nn.Module):
    """A user's own class: the toolkit cannot know whether its forward reads self.training."""

    def __init__(self):
        super().__init__()
        self.body = mlp()

    def forward(self, x):
        return self.body(x)


def test_user_classes_count_as_mode_dependent_and_agree():
    user = UserMLP().train()
    assert mode_dependent(user) and not mode_dependent(user.body)
    assert not mode_dependent(user.eval())
    x, y = batch()
    a = R2ETLoss(k=3)(user.train(), x, y)
    b = R2ETLoss(k=3)(user.body, x, y)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", ["r2et", "r2et_noh", "r2et_mm", "est_h"])
def test_fused_engine_gives_the_autograd_objective(method):
    model, (x, y) = mlp(), batch()
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    a = R2ETLoss(method, k=3, engine="fused")(fused, x, y)
    b = R2ETLoss(method, k=3, engine="autograd")(plain, x, y)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    a.backward()
    b.backward()
    for p, q in zip(fused.parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-13)


def test_fused_engine_names_the_layer_it_cannot_run():
    with pytest.raises(ValueError, match="BatchNorm1d"):
        R2ETLoss(k=3, engine="fused")(mlp(nn.BatchNorm1d(16)), *batch())
