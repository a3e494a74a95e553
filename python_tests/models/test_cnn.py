import pytest
import torch
import torch.nn.functional as F

from r2et_fast import models
from r2et_fast.datasets import mnist_pairs
from r2et_fast.train import TrainConfig, build_model, load_model, train


def test_single_cnn_shapes_and_parameter_count():
    m = models.build("cnn", (1, 28, 28), 10, activation="softplus")
    assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    # the spec's layer sizes: conv 1->8 3x3, conv 8->16 5x5, 144 -> 64 -> 32 -> 10
    assert sum(p.numel() for p in m.parameters()) == (8 * 9 + 8) + (16 * 8 * 25 + 16) + (144 * 64 + 64) \
        + (64 * 32 + 32) + (32 * 10 + 10)
    assert isinstance(m.body.act, torch.nn.Softplus)


def test_siamese_logits_are_a_sigmoid_on_the_cosine_head():
    torch.manual_seed(0)
    m = models.build("siamese_cnn", (2, 28, 28))
    x = torch.rand(4, 2, 28, 28)
    logits = m(x)
    a, b = m.embeddings(x)
    z = m.head(F.cosine_similarity(a, b).unsqueeze(1)).squeeze(1)
    assert torch.allclose(logits[:, 1] - logits[:, 0], z)
    # the siamese model is symmetric in its two images
    assert torch.allclose(m(x.flip(1)), logits, atol=1e-6)
    # an image paired with itself has cosine 1
    same = torch.stack([x[:, 0], x[:, 0]], 1)
    assert torch.allclose(m(same)[:, 1] * 2, (m.head.weight + m.head.bias).expand(4, 1).squeeze(1), atol=1e-5)


def test_explanation_is_twice_differentiable_wrt_parameters():
    m = models.build("siamese_cnn", (2, 28, 28), activation="softplus").double()
    x = torch.rand(2, 2, 28, 28, dtype=torch.float64, requires_grad=True)
    g = torch.autograd.grad(m(x)[:, 1].sum(), x, create_graph=True)[0]
    (w,) = torch.autograd.grad(g.abs().sum(), [m.embed.fc3.weight])
    assert w.abs().sum() > 0


@pytest.mark.parametrize("arch, shape, match", [
    ("cnn", (2, 28, 28), "shape"), ("siamese_cnn", (1, 28, 28), "shape"), ("rnn", (4,), "arch"),
    ("siamese_gcn", (3, 10), "shape"), ("siamese_gcn", (2, 11), "upper-triangle"),
])
def test_bad_architecture_or_shape(arch, shape, match):
    with pytest.raises(ValueError, match=match):
        models.build(arch, shape)


def test_wrong_input_shape_at_call_time():
    with pytest.raises(ValueError, match="SiameseCNN"):
        models.build("siamese_cnn", (2, 28, 28))(torch.rand(2, 1, 28, 28))


def test_siamese_training_learns_pairs_and_round_trips(tmp_path):
    data = mnist_pairs(n_pairs=600, seed=0)
    # On ReLU CNNs the finite-difference Hessian term must stay small: a large weight kills the ReLUs
    # (a dead net has zero Hessian), so this run uses the logit score and lambda_hess = 1e-4.
    cfg = TrainConfig(method="r2et", arch="siamese_cnn", epochs=4, batch_size=32, k=50, score="logit",
                      lambda_hess=1e-4)
    result = train(data, cfg, out_dir=tmp_path, progress=False)
    assert result.history[-1]["val_auc"] > 0.8
    model, cfg2, meta = load_model(tmp_path / "model.pt")
    assert cfg2 == cfg and meta["input_shape"] == (2, 28, 28)
    assert torch.allclose(model(data.x_test[:8]), result.model(data.x_test[:8]))
    assert isinstance(build_model(TrainConfig(method="sp", arch="cnn"), (1, 28, 28), 10).body.act,
                      torch.nn.Softplus)
