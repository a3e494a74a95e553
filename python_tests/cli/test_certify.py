"""`r2et-fast certify`: bounds (and attacks) for a saved model, on a tiny tabular model trained and
saved in-process, and on a tiny MNIST CNN; clear errors for a missing model or a wrong data set."""

from __future__ import annotations

import dataclasses
import json

import pytest

from r2et_fast.cli import main
from r2et_fast.datasets import load_mnist, load_tabular
from r2et_fast.train import TrainConfig, train


def _train(tmp_path_factory, name: str, data, cfg: TrainConfig):
    run = tmp_path_factory.mktemp(name)
    small = dataclasses.replace(data, x_train=data.x_train[:256], y_train=data.y_train[:256])
    train(small, cfg, out_dir=run, progress=False, dataset_name=name.split("_")[0])
    return run / "model.pt"


@pytest.fixture(scope="module")
def compas_model(tmp_path_factory):
    cfg = TrainConfig(method="vanilla", activation="softplus", epochs=1, hidden=8, score="logit")
    return _train(tmp_path_factory, "compas", load_tabular("compas"), cfg)


def _certify(model, out, *extra):
    return main(["certify", "--model", str(model), "--n-samples", "4", "--out", str(out), "--no-progress",
                 *extra])


def test_bounds_only(compas_model, tmp_path, capsys):
    assert _certify(compas_model, tmp_path, "--dataset", "compas", "--eps", "0.05", "0.1") == 0
    printed = capsys.readouterr().out
    assert "T_e" in printed and "l2_saliency.json" in printed
    payload = json.loads((tmp_path / "l2_saliency.json").read_text())
    assert payload["dataset"] == "compas" and payload["k"] == 8 and payload["validate"] is False
    assert [r["summary"]["eps"] for r in payload["records"]] == [0.05, 0.1]
    for r in payload["records"]:
        assert "hat_t_e" not in r and all(t >= 0 for t in r["certificate"]["t_e"])
        assert len(r["certificate"]["t_e"]) == 4
    # T_e = xi_max eps is linear in eps
    t1, t2 = (r["certificate"]["t_e"] for r in payload["records"])
    assert all(b == pytest.approx(2 * a, rel=1e-5) for a, b in zip(t1, t2))
    assert (tmp_path / "l2_saliency.md").read_text().startswith("# Attribution-deviation bounds")
    assert (tmp_path / "l2_saliency.png").stat().st_size > 1000


def test_validate_linf(compas_model, tmp_path):
    # the data set is read from the model file when --dataset is left out
    assert _certify(compas_model, tmp_path, "--eps", "0.05", "--norm", "linf", "--method", "gradxinput",
                    "--validate", "--restarts", "1", "--steps", "3", "--topk-steps", "5", "--k", "4") == 0
    payload = json.loads((tmp_path / "linf_gradxinput.json").read_text())
    assert payload["validate"] is True and payload["budget"]["restarts"] == 1 and payload["k"] == 4
    (record,) = payload["records"]
    s = record["summary"]
    assert s["attacks"] == ["pgd", "topk"] and len(record["hat_t_e"]) == 4
    for key in ("pct_outside_t_e", "pct_outside_t_e_generalized", "pct_outside_t_c",
                "pct_outside_t_e_linear"):
        assert 0.0 <= s[key] <= 100.0
    assert s["pct_outside_t_e_linear"] == 0.0
    table = (tmp_path / "linf_gradxinput.md").read_text()
    assert "% with T_e exceeded (linearised)" in table
    assert "% of samples with T_e exceeded by strong PGD + top-k attack (1 restart)" in table  # as run
    assert (tmp_path / "linf_gradxinput.png").stat().st_size > 1000


def test_missing_model_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        _certify(tmp_path / "nope.pt", tmp_path, "--dataset", "compas", "--eps", "0.1")
    assert err.value.code == 2 and "--model" in capsys.readouterr().err


def test_wrong_dataset_for_the_model(compas_model, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        _certify(compas_model, tmp_path, "--dataset", "adult", "--eps", "0.1")
    assert err.value.code == 2
    assert "was trained on compas, not on --dataset adult" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::r2et_fast.bounds.VanishingJacobianWarning")  # the point of it
def test_piecewise_linear_model_is_flagged(tmp_path_factory, tmp_path, capsys):
    model = _train(tmp_path_factory, "compas_lrelu", load_tabular("compas"),
                   TrainConfig(method="vanilla", epochs=1, hidden=8))  # the MLP's default leaky ReLU
    assert _certify(model, tmp_path, "--dataset", "compas", "--eps", "0.1") == 0
    assert "piecewise linear" in capsys.readouterr().err


def test_mnist_cnn_with_and_without_smooth_pooling(tmp_path_factory, tmp_path, capsys):
    cfg = TrainConfig(method="vanilla", arch="cnn", activation="softplus", epochs=1, batch_size=64,
                      score="logit")
    model = _train(tmp_path_factory, "mnist", load_mnist(), cfg)
    common = ("--dataset", "mnist", "--eps", "0.1", "--n-samples", "2", "--validate", "--restarts", "1",
              "--steps", "3")
    assert _certify(model, tmp_path / "max", *common) == 0
    assert "exact ties" in capsys.readouterr().err
    assert _certify(model, tmp_path / "lse", *common, "--smooth-pool", "0.1") == 0
    payload = json.loads((tmp_path / "lse" / "l2_saliency.json").read_text())
    assert payload["smooth_pool"] == 0.1 and payload["k"] == 50 and payload["notes"] == []
    assert payload["records"][0]["summary"]["pct_outside_t_e_linear"] == 0.0
