"""TS (Kukleva et al., ICLR 2023): the cosine temperature schedule in SimCLR and MoCo v2, against numpy."""

import math

import keras
import numpy as np
import pytest
from helpers import run_serialization_test, to_numpy

from keras_ssl_lt import losses
from keras_ssl_lt.methods.moco import MoCoV2
from keras_ssl_lt.methods.simclr import SimCLR
from keras_ssl_lt.methods.temperature import CosineTemperature, get
from keras_ssl_lt.rwsam import SAM


def _numpy_tau(epoch, tau_min, tau_max, period):
    """Algorithm 1 of the paper, written out independently (float64)."""
    return tau_min + (tau_max - tau_min) * (1.0 + np.cos(2.0 * np.pi * np.asarray(epoch, "float64") / period)) / 2.0


def _encoder():
    x = keras.Input((8, 8, 3))
    return keras.Model(x, keras.layers.Dense(6)(keras.layers.Flatten()(x)))


def _images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 3)).astype("float32")


def test_schedule_matches_numpy():
    ts = CosineTemperature(0.1, 1.0, 400)
    epochs = np.array([0, 1, 57, 100, 200, 399, 400, 1234])
    np.testing.assert_allclose(to_numpy(ts.value_at_epoch(epochs)), _numpy_tau(epochs, 0.1, 1.0, 400), rtol=1e-6)
    steps = np.arange(0, 40)
    want = _numpy_tau(1 + steps // 7, 0.1, 1.0, 400)  # epochs counted from 1, constant within an epoch
    np.testing.assert_allclose(to_numpy(ts(steps, 7)), want, rtol=1e-6)
    smooth = CosineTemperature(0.2, 0.9, 3.5, per_step=True)
    np.testing.assert_allclose(to_numpy(smooth(steps, 7)), _numpy_tau(1 + steps / 7, 0.2, 0.9, 3.5), rtol=1e-5)


@pytest.mark.parametrize("per_step", [False, True])
def test_temperature_seen_by_the_loss_across_epochs(per_step):
    """Logged per epoch (the mean of each step's value), with 2 steps per call (steps_per_execution; not torch)."""
    ts = {"schedule": "cosine", "tau_min": 0.1, "tau_max": 1.0, "period_epochs": 3, "per_step": per_step}
    model = SimCLR(_encoder(), projection_dim=4, projection_hidden_dim=8, temperature=ts)
    spe = 1 if keras.backend.backend() == "torch" else 2  # Keras' torch trainer runs one step per call
    model.compile(optimizer=keras.optimizers.SGD(0.01), steps_per_execution=spe)
    history = model.fit(_images(16), batch_size=4, epochs=3, verbose=0)  # 4 steps per epoch
    steps = np.arange(12)
    epoch = 1 + (steps / 4 if per_step else steps // 4)
    want = _numpy_tau(epoch, 0.1, 1.0, 3).reshape(3, 4).mean(axis=1)
    np.testing.assert_allclose(history.history["temperature"], want, rtol=1e-5)
    # A second fit continues from the saved step counter (epoch 4 = 1 + 12 // 4).
    history = model.fit(_images(16), batch_size=4, epochs=1, verbose=0)
    e4 = 1 + (np.arange(12, 16) / 4 if per_step else np.arange(12, 16) // 4)
    np.testing.assert_allclose(history.history["temperature"], [_numpy_tau(e4, 0.1, 1.0, 3).mean()], rtol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"num_groups": 2}, {"offset": 2}])
def test_nt_xent_at_a_tensor_temperature_equals_the_float_one(kwargs):
    rng = np.random.default_rng(1)
    z1, z2 = (rng.normal(size=(4, 5)).astype("float32") for _ in range(2))
    if "offset" in kwargs:  # the local rows 2..6 of a global batch of 8
        g1, g2 = (rng.normal(size=(8, 5)).astype("float32") for _ in range(2))
        g1[2:6], g2[2:6] = z1, z2
        kwargs = {"global_z1": g1, "global_z2": g2, "offset": 2}
    want = to_numpy(losses.nt_xent(z1, z2, 0.3, **kwargs))
    got = to_numpy(losses.nt_xent(z1, z2, keras.ops.convert_to_tensor(0.3), **kwargs))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_moco_scheduled_loss_equals_info_nce():
    ts = CosineTemperature(0.1, 1.0, 10)
    model = MoCoV2(_encoder(), projection_dim=4, queue_size=8, temperature=ts)
    fixed = MoCoV2(_encoder(), projection_dim=4, queue_size=8, temperature=float(_numpy_tau(1, 0.1, 1.0, 10)))
    fixed.set_weights(
        [w for v, w in zip(model.weights, model.get_weights(), strict=True) if "temperature" not in v.path]
    )
    x = keras.ops.convert_to_tensor(_images(4))
    got = model.compute_loss_terms([x, x], None, training=False)
    want = fixed.compute_loss_terms([x, x], None, training=False)
    np.testing.assert_allclose(to_numpy(got["loss"]), to_numpy(want["loss"]), rtol=1e-5, atol=1e-6)
    assert float(to_numpy(got["temperature"])) == pytest.approx(_numpy_tau(1, 0.1, 1.0, 10), rel=1e-6)


def test_float_temperature_unchanged():
    model = SimCLR(_encoder(), projection_dim=4, projection_hidden_dim=8, temperature=0.5)
    assert model.get_config()["temperature"] == 0.5 and not model.temperature_scheduled
    assert model.fit_callbacks() == [] and "temperature" not in [m.name for m in model.metrics]


def test_config_and_saving_with_a_schedule(tmp_path):
    model = MoCoV2(_encoder(), projection_dim=4, queue_size=8, temperature=CosineTemperature(0.1, 1.0, 5))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.fit(_images(8), batch_size=4, epochs=1, verbose=0)
    assert model.get_config()["temperature"] == {
        "schedule": "cosine",
        "tau_min": 0.1,
        "tau_max": 1.0,
        "period_epochs": 5.0,
        "per_step": False,
        "steps_per_epoch": None,
    }
    loaded = run_serialization_test(model, _images(4), tmp_path)
    assert loaded.temperature == model.temperature
    assert int(to_numpy(loaded.optimizer.iterations)) == 2
    assert float(to_numpy(loaded.temperature_steps_per_epoch)) == 2.0
    assert float(to_numpy(loaded.current_temperature())) == pytest.approx(_numpy_tau(2, 0.1, 1.0, 5), rel=1e-6)


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="`tau_min`"):
        CosineTemperature(tau_min=0.0)
    with pytest.raises(ValueError, match="`tau_max` must be >= `tau_min`"):
        CosineTemperature(tau_min=0.5, tau_max=0.2)
    with pytest.raises(ValueError, match="`period_epochs`"):
        CosineTemperature(period_epochs=-1)
    with pytest.raises(ValueError, match="`per_step`"):
        CosineTemperature(per_step=1)
    with pytest.raises(ValueError, match="`steps_per_epoch`"):
        CosineTemperature(steps_per_epoch=0)
    with pytest.raises(ValueError, match=r"temperature\['schedule'\]"):
        get({"schedule": "linear"})
    with pytest.raises(ValueError, match="unknown key"):
        get({"schedule": "cosine", "t_max": 200})
    for bad in ("0.5", -1.0, math.inf, None):
        with pytest.raises(ValueError, match="`temperature`"):
            SimCLR(_encoder(), projection_dim=4, projection_hidden_dim=8, temperature=bad)


def test_schedule_with_sam_and_unknown_length():
    model = SimCLR(_encoder(), projection_dim=4, projection_hidden_dim=8, temperature=CosineTemperature(0.1, 1.0, 4))
    model.compile(optimizer=keras.optimizers.SGD(0.01), sharpness=SAM(rho=0.05))
    logs = model.fit(_images(8), batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(logs["perturbed_loss"][0])
    assert logs["temperature"][0] == pytest.approx(_numpy_tau(1, 0.1, 1.0, 4), rel=1e-6)

    def endless():
        while True:
            yield (_images(4),)

    with pytest.raises(ValueError, match="steps per epoch"):
        model.fit(endless(), epochs=1, verbose=0)
