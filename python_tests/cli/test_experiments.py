"""`r2et-fast bounds` (r2et_fast/cli/_experiments.py): the strong attack's restarts reach the
config (5 by default, fewer with --quick, --restarts for the user), every pooling of the bound
tables is offered, and the printed headline names the attack and its restarts."""

from __future__ import annotations

import pytest

import r2et_fast.experiments.bounds as bounds_module
from r2et_fast.cli import main


@pytest.fixture
def seen(monkeypatch):
    configs = []  # the configs `bounds` ran with (the run itself is skipped)
    headline = [{"pooling": "avg", "attribution": "saliency", "norm": "l2", "n": 4,
                 "strong_attack": "strong PGD (5 restarts)", "pct_t_e_exceeded_by_strong_pgd": 25.0,
                 "pct_t_e_generalized_exceeded_by_strong_pgd": 0.0, "pct_outside_t_e_linear": 0.0,
                 "min_tightness_r": -0.01}]
    monkeypatch.setattr(bounds_module, "run_bounds",
                        lambda cfg, progress: configs.append(cfg) or {"headline": headline})
    return configs


@pytest.mark.parametrize(("argv", "restarts"), [([], 5), (["--quick"], 2), (["--restarts", "7"], 7),
                                                (["--quick", "--restarts", "3"], 3)])
def test_restarts_of_the_strong_attack(seen, tmp_path, argv, restarts):
    assert main(["bounds", *argv, "--out", str(tmp_path)]) == 0
    (cfg,) = seen
    assert cfg.restarts == restarts and cfg.budget().restarts == restarts


def test_every_pooling_is_a_default_and_a_choice(seen, tmp_path, capsys):
    assert main(["bounds", "--out", str(tmp_path)]) == 0
    assert main(["bounds", "--poolings", "avg", "--out", str(tmp_path)]) == 0
    default, avg_only = seen
    assert default.poolings == ("max", "lse", "avg") and avg_only.poolings == ("avg",)
    assert avg_only.archs() == ("avgpool_cnn",)
    out = capsys.readouterr().out
    assert "exceeded by strong PGD (5 restarts): T_e  25.0%" in out


def test_an_unknown_pooling_is_refused(seen, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["bounds", "--poolings", "median", "--out", str(tmp_path)])
    assert err.value.code == 2 and "--poolings" in capsys.readouterr().err and not seen
