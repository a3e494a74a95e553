"""Host syncs of the attack loop (docs/spec.md "Devices and scale-out"): an attack's steps read
nothing back to the host (early stop and the Lagrangian constraints stay on the device); the
multi-objective attack reads only its line search's early exit, once per step when every sample
takes its first try. The checks of a call's inputs run once per call; a model that is not finite
near x is still refused, after the loop. Counted by ``python_tests._host_syncs``."""

from __future__ import annotations

import warnings

import pytest
import torch

from python_tests._host_syncs import count_host_syncs
from r2et_fast._validation import trusted_values
from r2et_fast.attacks import ATTACKS, ERAttack, MultiObjectiveERAttack, VanishingGradientWarning

ITERATIVE = [name for name in ATTACKS if name != "erattack_mo"]
SETTINGS = {"early_stop": dict(constraint="early_stop"), "none": dict(constraint="none"),
            "box": dict(constraint="early_stop", lower=-3.0, upper=3.0), "gda": dict(constraint="gda"),
            "random_start": dict(constraint="early_stop", random_start=True)}


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Softplus(), torch.nn.Linear(8, 3))
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    return model, x, torch.tensor([0, 1, 2, 0, 1])


def _syncs(attack, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VanishingGradientWarning)
        with count_host_syncs() as syncs:
            attack(x, y)
    return syncs


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("name", ITERATIVE)
def test_iterative_steps_read_nothing_back(backend, batch, name, setting):
    model, x, y = batch
    kw = dict(k=2, eps=0.5, alpha=0.05, backend=backend, **SETTINGS[setting])
    few, many = (_syncs(ATTACKS[name](model, steps=steps, **kw), x, y) for steps in (2, 6))
    assert many.count == few.count, (f"{name} ({setting}): {few.count} host reads with 2 steps, "
                                     f"{many.count} with 6:\n{many.summary()}")


@pytest.mark.parametrize("box", [{}, dict(lower=-3.0, upper=3.0)])
def test_multiobjective_reads_only_the_line_search_exit(backend, batch, box):
    model, x, y = batch
    kw = dict(k=2, eps=0.5, alpha=0.05, backend=backend, **box)
    few, many = (_syncs(MultiObjectiveERAttack(model, steps=steps, **kw), x, y) for steps in (2, 6))
    extra = list(many.sites)
    for site in few.sites:
        extra.remove(site)
    assert 0 < len(extra) <= 4 * 6, many.summary()  # at most `backtracks` (6) per step
    assert all("attacks/_multiobjective.py" in site and "_steps" in site for site in extra), many.summary()
    # without backtracking there is no exit to test
    few, many = (_syncs(MultiObjectiveERAttack(model, steps=steps, backtracks=0, **kw), x, y)
                 for steps in (2, 6))
    assert many.count == few.count, many.summary()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_trusted_call_reads_nothing_back(batch, name):
    """Under trusted_values() (the Trainer's batches after the first: AT's inner attack) a call
    makes no host read but the multi-objective line search's exit: no input check, no
    vanishing-gradient probe or warning."""
    model, x, y = batch
    with trusted_values():
        syncs = _syncs(ATTACKS[name](model, k=2, eps=0.5, alpha=0.05, steps=3), x, y)
    reads = [site for site in syncs.sites if "attacks/_multiobjective.py" not in site]
    assert not reads, syncs.summary()


def test_trusted_calls_give_the_same_result(batch):
    model, x, y = batch
    attack = ERAttack(model, k=2, eps=0.5, alpha=0.05, steps=4, lower=-3.0, upper=3.0)
    plain = attack(x, y)
    with trusted_values():
        trusted = attack(x, y)
    for field in ("x_adv", "precision_at_k", "manipulation_epoch", "label_kept", "steps_run", "adv_maps"):
        assert torch.equal(getattr(plain, field), getattr(trusted, field)), field


def test_the_box_is_checked_once_per_call(batch):
    model, x, y = batch
    with pytest.raises(ValueError, match="upper contains NaN"):
        ERAttack(model, k=2, steps=0, upper=torch.full((6,), float("nan")))(x, y)
    with pytest.raises(ValueError, match="outside the box"):
        ERAttack(model, k=2, steps=1, upper=0.0)(x.abs() + 1, y)


@pytest.mark.parametrize("attack", [ERAttack, MultiObjectiveERAttack])
def test_a_model_not_finite_near_x_is_still_refused(backend, batch, attack):
    """The steps no longer check each iterate's maps on the host: a NaN met on the way is an error
    after the loop (the native kernels still raise at once)."""
    model, x, y = batch
    calls = []

    def explainer(z, target):  # finite at the clean point only
        calls.append(1)
        maps = z * z
        return maps if len(calls) == 1 else maps * float("nan")

    with pytest.raises(ValueError, match="NaN or Inf"):
        attack(model, k=2, eps=0.5, alpha=0.05, steps=3, explainer=explainer, backend=backend)(x, y)
