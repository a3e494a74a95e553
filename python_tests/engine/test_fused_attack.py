"""The fused attack loop (``ops.fused_attack.fused_mlp_attack``) and the fast path of the attacks it
serves (``engine._fused_attack``): the same iterates as the generic loop on random MLPs (float64, to
1e-6), native against twin, edge cases, the fast path declining wherever it does not apply, and bad
input refused with the argument's name."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

import r2et_fast
from python_tests.engine.fused_cases import examples, mlp_cases
from r2et_fast.attacks import AttributionPGD, ERAttack, MSEAttack, TopKAttack, VanishingGradientWarning
from r2et_fast.engine import _fused_attack
from r2et_fast.explain import GradientXInput, Saliency
from r2et_fast.explain._score import autograd_gradients
from r2et_fast.ops.fused_attack import fused_mlp_attack

hypothesis = pytest.importorskip("hypothesis")
st, given, settings, assume = (hypothesis.strategies, hypothesis.given, hypothesis.settings,
                               hypothesis.assume)
native = pytest.mark.skipif(not r2et_fast.native_available(), reason="needs the native extension")
FIELDS = ("x_adv", "precision_at_k", "steps_run", "adv_maps", "label_kept", "manipulation_epoch")


@pytest.fixture
def calls(monkeypatch):
    """How often the attacks took the fused loop."""
    count = [0]
    real = _fused_attack.fused_mlp_attack

    def counted(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(_fused_attack, "fused_mlp_attack", counted)
    return count


def _runs(attack, x, y):
    """(fused run, generic run) of one attack."""
    fused = attack(x, y)
    with autograd_gradients():
        generic = attack(x, y)
    return fused, generic


def _assert_same(fused, generic, atol=1e-6):
    for name in FIELDS:
        a, b = getattr(fused, name), getattr(generic, name)
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=0, atol=atol, msg=name)
        else:
            assert torch.equal(a, b), name


ATTACK_KINDS = st.sampled_from(["er_all", "er_anchor", "er_mm", "mse", "topk", "pgd"])


def _attack(kind: str, model, explainer, k: int, transform: str, **kw):
    if kind.startswith("er_"):
        return ERAttack(model, k=k, pairs=kind[3:], transform=transform, explainer=explainer, **kw)
    cls = {"mse": MSEAttack, "topk": TopKAttack, "pgd": AttributionPGD}[kind]
    return cls(model, k=k, explainer=explainer, **kw)


def _captured_twin(attack, x, y):
    """The attack by the fused op (its arguments captured) and the op's twin on those arguments."""
    captured = {}
    real = _fused_attack.fused_mlp_attack

    def capture(*args, **kwargs):
        captured["args"], captured["kwargs"] = args, kwargs
        return real(*args, **kwargs)

    _fused_attack.fused_mlp_attack = capture
    try:
        fused = attack(x, y)
    finally:
        _fused_attack.fused_mlp_attack = real
    kwargs = {**captured["kwargs"], "backend": "reference"}
    return fused, fused_mlp_attack(*captured["args"], **kwargs)


def _close(a: torch.Tensor, b: torch.Tensor, atol: float) -> bool:
    return torch.equal(a, b) if not a.is_floating_point() else bool(((a - b).abs() <= atol).all())


@native
@settings(max_examples=examples(60), deadline=None)
@given(net=mlp_cases(max_width=48), kind=ATTACK_KINDS, score=st.sampled_from(["logit", "prob", "loss"]),
       use_abs=st.booleans(), transform=st.sampled_from(["linear", "exp"]), data=st.data())
def test_iterates_match_the_generic_loop_float64(net, kind, score, use_abs, transform, data):
    """Native loop = generic loop (autograd) to 1e-6, on the examples where the op's twin (a third,
    independent implementation) agrees with the generic loop: the others are decided by rounding
    (a near-zero direction normalised to length alpha, a sign step of a near-zero component)."""
    model, x, y = net
    model.eval()
    n = x.flatten(1).shape[1]
    k = data.draw(st.integers(1, n - 1), label="k")
    box = data.draw(st.booleans(), label="box")
    kw = dict(eps=data.draw(st.sampled_from([0.05, 0.3, 1.0])), alpha=data.draw(st.sampled_from([0.01, 0.1])),
              steps=data.draw(st.integers(0, 6)), norm=data.draw(st.sampled_from(["l2", "linf"])),
              step_norm=data.draw(st.sampled_from(["l2", "linf"])),
              constraint=data.draw(st.sampled_from(["early_stop", "none"])),
              random_start=data.draw(st.booleans()), seed=data.draw(st.integers(0, 99)))
    if box:
        bound = float(x.abs().max()) + 0.5
        kw.update(lower=-bound, upper=bound)
    attack = _attack(kind, model, Saliency(model, score=score, abs=use_abs), k, transform, **kw)
    fused, twin = _captured_twin(attack, x, y)
    with autograd_gradients():
        generic = attack(x, y)
    flat = generic.x_adv.flatten(1)
    assume(_close(twin[0], flat, 1e-6) and _close(twin[2], generic.steps_run, 0)
           and _close(twin[1], generic.precision_at_k, 0))
    _assert_same(fused, generic)


def _mlp(act: nn.Module | None = None, n: int = 10, classes: int = 3, dtype=torch.float64):
    torch.manual_seed(3)
    act = nn.Softplus(beta=2.0) if act is None else act
    layers = [nn.Linear(n, 24), act, nn.Linear(24, 12), nn.Tanh(), nn.Linear(12, classes)]
    return nn.Sequential(*layers).to(dtype)


def _batch(n: int = 10, batch: int = 33, classes: int = 3, dtype=torch.float64):
    g = torch.Generator().manual_seed(4)
    return (torch.randn(batch, n, generator=g, dtype=dtype).clamp(-2, 2),
            torch.randint(0, max(classes, 2), (batch,), generator=g))


@native
@pytest.mark.parametrize("kind", ["er_all", "er_anchor", "er_mm", "mse", "topk", "pgd"])
@pytest.mark.parametrize("norm,step_norm", [("linf", "l2"), ("l2", "l2"), ("linf", "linf")])
def test_every_attack_and_norm_takes_the_fused_loop(calls, kind, norm, step_norm):
    model = _mlp().eval()
    x, y = _batch()
    kw = dict(eps=0.4, alpha=0.05, steps=8, norm=norm, step_norm=step_norm, lower=-2.5, upper=2.5)
    if kind == "pgd":
        kw["restarts"] = 2
    fused, generic = _runs(_attack(kind, model, Saliency(model, score="loss"), 3, "exp", **kw), x, y)
    assert calls[0] == (2 if kind == "pgd" else 1)
    _assert_same(fused, generic)


@native
@pytest.mark.parametrize("k", [1, 9])
@pytest.mark.parametrize("batch", [1, 40])
def test_edges_k_and_batch(calls, k, batch):
    model = _mlp().eval()
    x, y = _batch(batch=batch)
    _assert_same(*_runs(ERAttack(model, k=k, eps=0.3, alpha=0.05, steps=5), x, y))
    assert calls[0] == 1


@native
def test_zero_steps_and_early_stop_firing(calls):
    model = _mlp().eval()
    x, y = _batch()
    none = ERAttack(model, k=3, steps=0)(x, y)
    assert torch.equal(none.x_adv, x) and none.precision_at_k.shape == (1, 33)
    big = dict(k=3, eps=3.0, alpha=0.5, steps=12)
    fused, generic = _runs(ERAttack(model, constraint="early_stop", **big), x, y)
    _assert_same(fused, generic)
    assert bool(fused.label_kept.all()) and bool((fused.steps_run < 12).any())  # the stop fired
    free = ERAttack(model, constraint="none", **big)(x, y)
    assert not bool(free.label_kept.all())
    assert calls[0] == 3


@native
@pytest.mark.parametrize("classes", [1, 2])
def test_single_output_and_flattened_images(calls, classes):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 20), nn.LeakyReLU(0.2), nn.Linear(20, classes)).double()
    x = torch.rand(12, 1, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (12,))
    fused, generic = _runs(ERAttack(model, k=4, eps=0.2, alpha=0.02, steps=6, lower=0.0, upper=1.0), x, y)
    assert fused.x_adv.shape == x.shape
    _assert_same(fused, generic)
    assert calls[0] == 1


@native
def test_vanishing_gradients_still_warn(calls):
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)).double().eval()
    x, y = torch.randn(5, 6, dtype=torch.float64), torch.zeros(5, dtype=torch.int64)
    with pytest.warns(VanishingGradientWarning, match="5 of 5"):
        result = ERAttack(model, k=2, steps=3, explainer=Saliency(model, score="logit"))(x, y)
    assert torch.equal(result.x_adv, x) and calls[0] == 1


@native
def test_sign_steps_match_on_a_well_conditioned_model(calls):
    model = _mlp(nn.Softplus(beta=1.0)).eval()
    x, y = _batch()
    _assert_same(*_runs(TopKAttack(model, k=3, eps=0.3, alpha=0.02, steps=6), x, y))


@native
def test_float32_is_close(calls):
    model = _mlp(dtype=torch.float32).eval()
    x, y = _batch(dtype=torch.float32)
    fused, generic = _runs(ERAttack(model, k=3, eps=0.3, alpha=0.05, steps=5, norm="l2"), x, y)
    torch.testing.assert_close(fused.x_adv, generic.x_adv, rtol=0, atol=1e-4)
    assert calls[0] == 1


class _OwnLoss(ERAttack):
    def _loss(self, maps, clean, state):
        return -maps.square().sum(dim=1)


@native
@pytest.mark.parametrize("case", ["surrogate", "lagrangian", "reference", "gradxinput", "normalize",
                                  "other model", "own loss", "autograd", "dropout module"])
def test_declines_where_it_does_not_apply(calls, case):
    model = _mlp(nn.ReLU()).eval()
    x, y = _batch()
    kw: dict = dict(k=3, eps=0.3, alpha=0.05, steps=3)
    cls = ERAttack
    if case == "surrogate":
        kw["surrogate_beta"] = 5.0
    elif case == "lagrangian":
        kw["constraint"] = "gda"
    elif case == "reference":
        kw["backend"] = "reference"
    elif case == "gradxinput":
        kw["explainer"] = GradientXInput(model)
    elif case == "normalize":
        kw["explainer"] = Saliency(model, normalize=True)
    elif case == "other model":
        kw["explainer"] = Saliency(_mlp(nn.ReLU()).eval())
    elif case == "own loss":
        cls = _OwnLoss
    elif case == "dropout module":
        model = nn.Sequential(model, nn.Dropout(0.5))
    with autograd_gradients() if case == "autograd" else contextlib.nullcontext():
        cls(model, **kw)(x, y)
    assert calls[0] == (1 if case == "dropout module" else 0)  # eval-mode Dropout is the identity


def _op_args(**change):
    model = _mlp()
    x, y = _batch(batch=4)
    lins = [m for m in model if isinstance(m, nn.Linear)]
    args = dict(x0=x, x_start=x.clone(), target=y, pred0=y.clone(), clean=x.abs(),
                hi=torch.topk(x.abs(), 3, dim=1).indices, lo=torch.empty(4, 0, dtype=torch.int64),
                lower=None, upper=None, probe=torch.randn(x.shape, dtype=torch.float64),
                weights=[m.weight.detach() for m in lins], biases=[m.bias.detach() for m in lins],
                layers=[0, 3, 0, 4, 0], layer_params=[0.0, 0.0, 2.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                k=3, steps=2)
    args.update(change)
    return args


@pytest.mark.parametrize("backend", ["native", "reference"][0 if r2et_fast.native_available() else 1:])
@pytest.mark.parametrize("change,message", [
    (lambda a: {"x0": a["x0"] * float("nan")}, "x0"),
    (lambda a: {"x_start": a["x_start"][:, :5]}, "x_start"),
    (lambda a: {"clean": a["clean"].float()}, "clean"),
    (lambda a: {"target": torch.tensor([0, 5, 1, 1])}, "target"),
    (lambda a: {"pred0": a["pred0"].int()}, "pred0"),
    (lambda a: {"hi": a["hi"] + 20}, "hi"),
    (lambda a: {"lo": a["lo"].float()}, "lo"),
    (lambda a: {"lower": torch.zeros(3, dtype=torch.float64)}, "lower"),
    (lambda a: {"k": 10}, "k"),
    (lambda a: {"steps": -1}, "steps"),
    (lambda a: {"objective": "margin"}, "objective"),
    (lambda a: {"norm": "l1"}, "norm"),
    (lambda a: {"eps": -1.0}, "eps"),
])
def test_bad_input_names_the_argument(backend, change, message):
    args = _op_args()
    args.update(change(args))
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        fused_mlp_attack(**args, backend=backend)


@pytest.mark.parametrize("objective", ["pair_gap", "distance"])
def test_every_device_against_the_twin(device, objective):
    """The op on each device's kernel (CPU: the blocked loop; CUDA: the composite of the device's
    kernels) against the twin, float64, with early stop and the box."""
    args = _op_args(steps=6)
    if objective == "distance":
        args.update(objective="distance", hi=args["lo"], early_stop=False, norm="l2")
    else:
        args.update(lower=torch.full((10,), -2.5, dtype=torch.float64),
                    upper=torch.full((10,), 2.5, dtype=torch.float64))
    twin = fused_mlp_attack(**args, backend="reference")
    def to(value):
        if isinstance(value, list):
            return [to(v) for v in value]
        return value.to(device) if isinstance(value, torch.Tensor) else value

    moved = {key: to(value) for key, value in args.items()}
    got = fused_mlp_attack(**moved, backend="native")
    for a, b in zip(got, twin):
        assert a.device.type == device
        if a.is_floating_point():
            torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-9)
        else:
            assert torch.equal(a.cpu(), b)


@native
@pytest.mark.parametrize("step_norm", ["l2", "linf"])
def test_a_non_finite_direction_is_refused_as_by_the_generic_loop(calls, step_norm):
    """exp(m_0 - m_1) of the exp pair gap overflows along the path: never a silent NaN step."""
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Tanh(), nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.01]]))
        model[2].weight.copy_(torch.tensor([[1000.0, 2000.0]]))
    x, y = torch.tensor([[3.0, 0.0]], dtype=torch.float64), torch.tensor([1])
    attack = ERAttack(model, k=1, transform="exp", eps=3.0, alpha=2.5 if step_norm == "l2" else 0.5,
                      steps=20, step_norm=step_norm, explainer=Saliency(model, score="logit"))
    with pytest.raises(ValueError, match="NaN or Inf"):
        attack(x, y)
    assert calls[0] == 1
    with autograd_gradients(), pytest.raises(ValueError, match="NaN or Inf"):
        attack(x, y)


class _OwnFinish(ERAttack):
    def _finish(self, *args):
        raise AssertionError("the generic loop's _finish ran")


@native
def test_declines_for_an_overridden_finish_or_an_instance_override(calls):
    model = _mlp().eval()
    x, y = _batch()
    with pytest.raises(AssertionError, match="_finish ran"):
        _OwnFinish(model, k=3, steps=2)(x, y)
    attack = ERAttack(model, k=3, steps=2)
    attack._loss = lambda maps, clean, state: -maps.square().sum(dim=1)  # type: ignore[method-assign]
    attack(x, y)
    assert calls[0] == 0


def test_pairs_all_takes_exactly_k_indices():
    args = _op_args()
    args["hi"] = torch.topk(args["clean"], 4, dim=1).indices  # k = 3
    with pytest.raises((ValueError, RuntimeError), match="hi"):
        fused_mlp_attack(**args, backend="native" if r2et_fast.native_available() else "reference")
