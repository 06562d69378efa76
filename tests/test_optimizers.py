"""`keras_ssl_lt.optimizers.SGD` against `torch.optim.SGD` (the independent reference), on every backend."""

import keras
import numpy as np
import pytest

import keras_ssl_lt as ksl
from keras_ssl_lt.optimizers import SGD, get_sgd

torch = pytest.importorskip("torch")

STEPS = 100


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in weights] for _ in range(STEPS)]
    return weights, grads


def _run_keras(opt, weights, grads):
    variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


def _run_torch(weights, grads, lr_fn, **kwargs):
    params = [torch.nn.Parameter(torch.tensor(w)) for w in weights]
    opt = torch.optim.SGD(params, lr=lr_fn(0), **kwargs)
    for step, g in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = lr_fn(step)
        for p, x in zip(params, g, strict=True):
            p.grad = torch.tensor(x)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_sgd_equals_torch_sgd_over_100_steps(nesterov, momentum, schedule):
    if nesterov and momentum == 0:
        pytest.skip("Nesterov needs momentum")
    weights, grads = _problem()
    if schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(0.1, STEPS)

        def lr_fn(step):
            return 0.1 * 0.5 * (1 + np.cos(np.pi * step / STEPS))
    else:
        lr = 0.1

        def lr_fn(step):
            return 0.1

    ours = _run_keras(SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=5e-2), weights, grads)
    ref = _run_torch(weights, grads, lr_fn, momentum=momentum, nesterov=nesterov, weight_decay=5e-2)
    for a, b in zip(ours, ref, strict=True):
        # 100 steps of float32 updates of O(1) weights: rounding alone is about 1e-6 here.
        np.testing.assert_allclose(a, b, rtol=0, atol=5e-6)


def test_coupled_decay_is_ten_times_decoupled_through_momentum():
    """The issue's measurement: with momentum 0.9 the coupled decay removes ~1/(1-0.9) times more weight."""
    w = [np.ones((1000,), "float32")]
    zero = [[np.zeros((1000,), "float32")] for _ in range(STEPS)]
    coupled = _run_keras(SGD(0.06, momentum=0.9, weight_decay=5e-4), w, zero)[0]
    decoupled = _run_keras(SGD(0.06, momentum=0.9, weight_decay=5e-4, decoupled_weight_decay=True), w, zero)[0]
    ratio = (1 - coupled.mean()) / (1 - decoupled.mean())
    assert 8.0 < ratio < 10.0  # the buffer needs ~10 steps to reach its 1/(1-momentum) steady state


def test_decoupled_equals_keras_sgd_at_constant_lr():
    weights, grads = _problem(1)
    ours = _run_keras(SGD(0.05, momentum=0.9, weight_decay=1e-2, decoupled_weight_decay=True), weights, grads)
    theirs = _run_keras(keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=1e-2), weights, grads)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=5e-6)


def test_excluded_variables_do_not_decay():
    opt = SGD(0.1, momentum=0.9, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["w1"])
    weights = [np.ones((3,), "float32"), np.ones((3,), "float32")]
    zero = [[np.zeros((3,), "float32")] * 2 for _ in range(3)]
    decayed, kept = _run_keras(opt, weights, zero)
    assert np.all(decayed < 1.0)
    np.testing.assert_array_equal(kept, np.ones(3))


def test_config_round_trip_and_registration():
    opt = SGD(keras.optimizers.schedules.CosineDecay(0.1, 10), momentum=0.9, nesterov=True, weight_decay=5e-4)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is SGD
    for key in ("momentum", "nesterov", "weight_decay", "decoupled_weight_decay"):
        assert again.get_config()[key] == opt.get_config()[key]
    assert again.get_config()["learning_rate"]["class_name"] == "CosineDecay"


def test_saved_model_resumes_with_its_buffers(tmp_path):
    """A `.keras` round trip keeps the optimizer's class, settings and momentum buffers: training resumes equal."""
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    views = {"views": np.stack([x, x[::-1]], axis=1)}

    def build():
        keras.utils.set_random_seed(0)
        model = ksl.SimCLR(ksl.backbones.small_resnet((8, 8, 3), width=0.25), projection_dim=8, projection_hidden_dim=8)
        model.compile(optimizer=SGD(0.05, momentum=0.9, weight_decay=5e-4))
        return model

    model = build()
    model.fit(views, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is SGD and loaded.optimizer.decoupled_weight_decay is False
    model.fit(views, batch_size=8, epochs=1, shuffle=False, verbose=0)
    loaded.fit(views, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"momentum": 1.5}, "momentum"),
        ({"momentum": True}, "momentum"),
        ({"momentum": 0.0, "nesterov": True}, "nesterov"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"decoupled_weight_decay": "yes"}, "decoupled_weight_decay"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD(0.1, **kwargs)


def test_get_sgd_conventions():
    assert isinstance(get_sgd(0.1, convention="keras"), keras.optimizers.SGD)
    assert not isinstance(get_sgd(0.1, convention="keras"), SGD)
    assert get_sgd(0.1, convention="coupled").decoupled_weight_decay is False
    assert get_sgd(0.1, convention="decoupled").decoupled_weight_decay is True
    with pytest.raises(ValueError, match="convention"):
        get_sgd(0.1, convention="torch")
