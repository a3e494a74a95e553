"""`r2et-fast reproduce --no-progress` hides every progress bar, the k / k' grid's included."""

from __future__ import annotations

from r2et_fast import cli
from r2et_fast.experiments.reproduce import ReproduceConfig

# a tiny run with a k grid (the rest as small as the cache tests make it)
TINY = dict(max_train=300, max_test=8, steps=2, epochs=1, correlation_samples=4, thickness_samples=2,
            thickness_path=2, faithfulness_samples=4, variant_samples=4, variant_steps=2,
            smoothgrad_samples=2, ig_steps=2, selection_steps=2, selection_samples=8, k_grid=(4,),
            n_pairs_grid=(2,), constraints=("none",))


def test_no_progress_hides_every_bar(tmp_path, monkeypatch, capsys):
    quick = ReproduceConfig.quick_defaults
    monkeypatch.setattr(ReproduceConfig, "quick_defaults",
                        classmethod(lambda cls, **chosen: quick(**{**chosen, **TINY})))
    args = ["reproduce", "--quick", "--datasets", "compas", "--methods", "vanilla", "--out", str(tmp_path)]
    assert cli.main([*args, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "k grid" not in err and "it/s" not in err and "%|" not in err, err
    (tmp_path / "results.json").unlink()  # with bars (everything else cached): they do reach stderr
    assert cli.main(args) == 0
    assert "k grid" in capsys.readouterr().err
