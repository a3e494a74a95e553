"""`r2et-fast certify --sound`: the sound certificate of a saved tabular MLP and an average-pooling
MNIST CNN, its files, and one-line errors (exit 2) for what it cannot certify."""

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
    cfg = TrainConfig(method="vanilla", epochs=1, hidden=8)  # the MLP's default leaky ReLU
    return _train(tmp_path_factory, "compas", load_tabular("compas"), cfg)


def _certify(model, out, *extra):
    return main(["certify", "--sound", "--model", str(model), "--n-samples", "4", "--out", str(out),
                 "--no-progress", *extra])


def test_sound_with_attacks(compas_model, tmp_path, capsys):
    assert _certify(compas_model, tmp_path, "--eps", "0", "0.01", "0.05", "--norm", "linf", "--score", "loss",
                    "--restarts", "1", "--steps", "3", "--k", "4") == 0
    printed = capsys.readouterr().out
    assert "certified P@k (sound)" in printed and "sound_linf_saliency.json" in printed
    payload = json.loads((tmp_path / "sound_linf_saliency.json").read_text())
    assert payload["sound"]["kind"] == "sound" and payload["first_order"]["kind"] == "first_order"
    assert len(payload["sound"]["radius"]) == 4 and len(payload["first_order"]["radius"]) == 4
    s = payload["summary"]
    assert s["eps"] == [0.0, 0.01, 0.05] and s["k"] == 4 and s["score"] == "loss"
    assert s["sound_certified_pak"][0] == 1.0 and s["sound_broken"] == 0 and s["bound_above_attack"] == 0
    assert all(c <= a + 1e-12 for c, a in zip(s["sound_certified_pak"], s["attacked_pak"], strict=True))
    assert (tmp_path / "sound_linf_saliency.md").read_text().startswith("# Sound top-k certificate")
    assert (tmp_path / "sound_linf_saliency.png").stat().st_size > 1000


def test_sound_bounds_only(compas_model, tmp_path):
    assert _certify(compas_model, tmp_path, "--eps", "0.02", "--method", "gradxinput", "--no-attack") == 0
    payload = json.loads((tmp_path / "sound_l2_gradxinput.json").read_text())
    assert "attacked" not in payload and "attacked_pak" not in payload["summary"]
    assert payload["norm"] == "l2" and payload["k"] == 8


def test_sound_on_an_average_pooling_mnist_cnn(tmp_path_factory, tmp_path):
    cfg = TrainConfig(method="vanilla", arch="avgpool_cnn", activation="softplus", epochs=1, batch_size=64,
                      score="logit")
    model = _train(tmp_path_factory, "mnist", load_mnist(), cfg)
    assert _certify(model, tmp_path, "--dataset", "mnist", "--eps", "0.001", "--n-samples", "2",
                    "--norm", "linf", "--restarts", "1", "--steps", "2") == 0
    payload = json.loads((tmp_path / "sound_linf_saliency.json").read_text())
    assert payload["k"] == 50 and payload["summary"]["sound_broken"] == 0


@pytest.mark.parametrize("extra, fragment", [
    (("--method", "ig"), "--method ig: --sound bounds saliency and gradxinput only"),
    (("--smooth-pool", "0.1"), "--smooth-pool: --sound certifies the saved model itself"),
    (("--eps", "-1"), "--eps"),
])
def test_sound_errors_are_one_line(compas_model, tmp_path, capsys, extra, fragment):
    args = [*extra] if "--eps" in extra else ["--eps", "0.01", *extra]
    with pytest.raises(SystemExit) as err:
        _certify(compas_model, tmp_path, *args)
    msg = capsys.readouterr().err
    assert err.value.code == 2 and fragment in msg and len(msg.strip().splitlines()) == 1


def test_sound_only_options_need_sound(compas_model, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["certify", "--model", str(compas_model), "--eps", "0.1", "--score", "loss",
              "--out", str(tmp_path)])
    assert err.value.code == 2 and "--score needs --sound" in capsys.readouterr().err


def test_max_pooling_cnn_is_refused(tmp_path_factory, tmp_path, capsys):
    cfg = TrainConfig(method="vanilla", arch="cnn", epochs=1, batch_size=64, score="logit")
    model = _train(tmp_path_factory, "mnist_max", load_mnist(), cfg)
    with pytest.raises(SystemExit) as err:
        _certify(model, tmp_path, "--dataset", "mnist", "--eps", "0.01", "--no-attack")
    msg = capsys.readouterr().err
    assert err.value.code == 2 and "max pooling" in msg and "avgpool_cnn" in msg
    assert len(msg.strip().splitlines()) == 1


def test_train_arch_swap_is_checked(capsys, tmp_path):
    with pytest.raises(SystemExit) as err:
        main(["train", "--dataset", "compas", "--arch", "avgpool_cnn", "--epochs", "1",
              "--out", str(tmp_path), "--no-progress"])
    assert err.value.code == 2 and "compas is modelled by mlp" in capsys.readouterr().err
