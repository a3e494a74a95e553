"""Bad arguments raise TypeError/ValueError naming the argument, for every public entry point."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from r2et_fast.explain import (
    GradientXInput,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    get_explainer,
    gradient_x_input,
    integrated_gradients,
    saliency,
    smoothgrad,
)

FUNCTIONS = {
    "saliency": saliency,
    "gradxinput": gradient_x_input,
    "smoothgrad": smoothgrad,
    "ig": integrated_gradients,
}
CLASSES = {
    "saliency": Saliency,
    "gradxinput": GradientXInput,
    "smoothgrad": SmoothGrad,
    "ig": IntegratedGradients,
}
FAST = {"smoothgrad": {"n_samples": 2, "seed": 0}, "ig": {"n_steps": 3}}


def _functional(name):
    def call(model, inputs, target=None, create_graph=False, **kw):
        return FUNCTIONS[name](model, inputs, target, create_graph, **{**FAST.get(name, {}), **kw})

    return call


def _class(name):
    def call(model, inputs, target=None, create_graph=False, **kw):
        e = CLASSES[name](model, **{**FAST.get(name, {}), **kw})
        return e.attribute(inputs, target=target, create_graph=create_graph)

    return call


ENTRY_POINTS = [pytest.param(_functional(n), id=f"fn-{n}") for n in FUNCTIONS] + [
    pytest.param(_class(n), id=f"cls-{n}") for n in CLASSES
]


@pytest.fixture(params=ENTRY_POINTS)
def call(request):
    return request.param


def test_inputs_not_tensor(call, linear):
    with pytest.raises(TypeError, match="inputs"):
        call(linear, [[0.0, 1.0, 2.0, 3.0]])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.bool])
def test_inputs_bad_dtype(call, linear, dtype):
    with pytest.raises(TypeError, match="inputs must be float32 or float64"):
        call(linear, torch.zeros(2, 4, dtype=dtype))


def test_inputs_empty_batch(call, linear):
    with pytest.raises(ValueError, match="inputs"):
        call(linear, torch.zeros(0, 4, dtype=torch.float64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_inputs_not_finite(call, linear, x, bad):
    x = x.clone()
    x[1, 2] = bad
    with pytest.raises(ValueError, match="inputs"):
        call(linear, x)


@pytest.mark.parametrize("target", [3, -1, torch.tensor([0, 1, 2, 3, 0]), torch.tensor(-2)])
def test_target_out_of_range(call, linear, x, target):
    with pytest.raises(ValueError, match="target"):
        call(linear, x, target)


@pytest.mark.parametrize(
    "target", [torch.tensor([0, 1]), torch.zeros(5, 1, dtype=torch.long), torch.zeros(6).long()]
)
def test_target_wrong_shape(call, linear, x, target):
    with pytest.raises(ValueError, match="target"):
        call(linear, x, target)


@pytest.mark.parametrize("target", [1.0, True, "1", torch.zeros(5), torch.zeros(5, dtype=bool)])
def test_target_wrong_type(call, linear, x, target):
    with pytest.raises(TypeError, match="target"):
        call(linear, x, target)


def test_target_other_device(call, linear, x):
    with pytest.raises(ValueError, match="target.*device"):
        call(linear, x, torch.zeros(5, dtype=torch.long, device="meta"))


def test_single_output_target_range(call, x):
    model = nn.Linear(4, 1).double()
    call(model, x, 1)
    with pytest.raises(ValueError, match="target"):
        call(model, x, 2)


@pytest.mark.parametrize("score", ["logits", "probability", None])
def test_unknown_score(call, linear, x, score):
    with pytest.raises(ValueError, match="score.*'logit'"):
        call(linear, x, score=score)


def test_unknown_reduce(call, images, conv):
    with pytest.raises(ValueError, match="reduce_channels.*'sum'"):
        call(conv, images, reduce_channels="mean")


def test_reduce_on_non_image(call, linear, x):
    with pytest.raises(ValueError, match="reduce_channels"):
        call(linear, x, reduce_channels="sum")


@pytest.mark.parametrize("arg", ["abs", "normalize", "create_graph"])
def test_non_bool_flags(call, linear, x, arg):
    with pytest.raises(TypeError, match=arg):
        call(linear, x, **{arg: 1})


@pytest.mark.parametrize(
    "output",
    [
        lambda z: z.sum(1),  # (B,)
        lambda z: z.unsqueeze(1),  # (B, 1, D)
        lambda z: z[:-1],  # wrong batch
        lambda z: z[:, :0],  # C == 0
        lambda z: (z > 0).long(),  # not floating
    ],
)
def test_bad_model_output(call, x, output):
    with pytest.raises(ValueError, match="model"):
        call(output, x)


def test_model_not_callable_or_not_returning_tensor(call, x):
    with pytest.raises(TypeError, match="model"):
        call("resnet", x)
    with pytest.raises(TypeError, match="model"):
        call(lambda z: z.tolist(), x)


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("smoothgrad", {"n_samples": 0}, "n_samples"),
        ("smoothgrad", {"n_samples": -3}, "n_samples"),
        ("smoothgrad", {"stdev": -0.1}, "stdev"),
        ("smoothgrad", {"stdev": float("nan")}, "stdev"),
        ("smoothgrad", {"chunk_size": 0}, "chunk_size"),
        ("smoothgrad", {"base": "ig"}, "base.*'saliency'"),
        ("smoothgrad", {"seed": 1, "generator": torch.Generator()}, "seed"),
        ("ig", {"n_steps": 0}, "n_steps"),
        ("ig", {"n_steps": 1, "method": "riemann_trapezoid"}, "n_steps"),
        ("ig", {"chunk_size": -1}, "chunk_size"),
        ("ig", {"internal_batch_size": 0}, "internal_batch_size"),
        ("ig", {"chunk_size": 2, "internal_batch_size": 4}, "chunk_size"),
        ("ig", {"method": "simpson"}, "method.*'gausslegendre'"),
    ],
)
def test_bad_hyper_parameters_value(linear, x, name, kw, match):
    with pytest.raises(ValueError, match=match):
        FUNCTIONS[name](linear, x, 0, **kw)
    with pytest.raises(ValueError, match=match):
        CLASSES[name](linear, **kw)
    with pytest.raises(ValueError, match=match):
        get_explainer(name, linear, **kw)
    with pytest.raises(ValueError, match=match):
        get_explainer(name, linear).attribute(x, 0, **kw)


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("smoothgrad", {"n_samples": 2.0}, "n_samples"),
        ("smoothgrad", {"stdev": "0.1"}, "stdev"),
        ("smoothgrad", {"seed": 1.5}, "seed"),
        ("smoothgrad", {"generator": 3}, "generator"),
        ("ig", {"n_steps": True}, "n_steps"),
        ("ig", {"baseline": "zeros"}, "baseline"),
    ],
)
def test_bad_hyper_parameters_type(linear, x, name, kw, match):
    with pytest.raises(TypeError, match=match):
        FUNCTIONS[name](linear, x, 0, **kw)


@pytest.mark.parametrize(
    "baseline",
    [
        torch.zeros(5, dtype=torch.float64),  # D = 4
        torch.zeros(3, 4, dtype=torch.float64),  # B = 5
        torch.zeros(5, 4, 1, dtype=torch.float64),  # would broadcast to a larger shape
        torch.full((4,), float("nan"), dtype=torch.float64),
        float("inf"),
        torch.zeros(4, dtype=torch.float64, device="meta"),
    ],
)
def test_bad_baseline(linear, x, baseline):
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(linear, x, 0, baseline=baseline)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device type")
def test_generator_other_device(linear, x):
    with pytest.raises(ValueError, match="generator"):
        smoothgrad(linear, x, 0, generator=torch.Generator(device="cuda"))


def test_unknown_explainer_name_and_override(linear, x):
    with pytest.raises(ValueError, match="name.*'saliency'.*'ig'"):
        get_explainer("lime", linear)
    with pytest.raises(TypeError, match="n_steps"):
        get_explainer("saliency", linear).attribute(x, 0, n_steps=3)
    with pytest.raises(TypeError):
        Saliency(linear, n_steps=3)
