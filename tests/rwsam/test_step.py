"""The regulariser owns its two-pass step (`keras_ssl_lt.rwsam.step`), on the current backend."""

import contextlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.rwsam import sharpness
from keras_ssl_lt.rwsam.step import SharpnessStep, StepHooks, two_pass_gradients


def npv(v):
    return np.asarray(ops.convert_to_numpy(v.value if hasattr(v, "value") else v))


def quadratic_hooks(stats):
    """Analytic hooks for `f(w) = 0.5 ||w||^2` (gradient `w`); each pass also moves the `stats` variable."""

    def value_and_grad(fn, variables):
        value, aux = fn()
        stats.assign(stats.value + 1.0)  # as a BatchNorm forward pass in training mode updates its statistics
        return value, aux, [ops.copy(v.value) for v in variables]

    return StepHooks(value_and_grad, contextlib.nullcontext, lambda grads: grads)


def test_two_pass_gradients_ascends_differentiates_and_restores():
    w = keras.Variable([3.0, 4.0])
    stats = keras.Variable(0.0)
    seen = []

    def loss_fn(weighted):
        seen.append(weighted)
        return lambda: (0.5 * ops.sum(ops.square(w.value)), "aux")

    step = two_pass_gradients(
        loss_fn, [w], quadratic_hooks(stats), sharpness.SAM(rho=5.0).perturbation, weighted_ascent=True, keep=[stats]
    )
    assert isinstance(step, SharpnessStep)
    assert seen == [True, False]  # weighted ascent, plain loss at w + eps
    assert float(npv(step.ascent_value)) == pytest.approx(12.5) and step.ascent_aux == "aux"
    np.testing.assert_allclose(npv(step.gradients[0]), [6.0, 8.0], rtol=1e-6)  # eps = 5 g / ||g|| = (3, 4)
    assert float(npv(step.perturbed_value)) == pytest.approx(50.0)
    np.testing.assert_array_equal(npv(w), [3.0, 4.0])
    assert float(npv(stats)) == 1.0  # the second pass's update of the kept statistics is undone


@pytest.mark.parametrize(("bn_update", "passes_kept"), [("first", 1.0), ("both", 2.0)])
def test_sam_gradients_keeps_batchnorm_statistics_as_configured(bn_update, passes_kept):
    w = keras.Variable([1.0, -2.0])
    stats = keras.Variable(0.0)
    reg = sharpness.RWSAM(rho=0.1, bn_update=bn_update)
    seen = []

    def loss_fn(weighted):
        seen.append(weighted)
        return lambda: (0.5 * ops.sum(ops.square(w.value)), None)

    reg.gradients(loss_fn, [w], quadratic_hooks(stats), batchnorm_variables=[stats])
    assert seen == [True, False]  # rwSAM ascends on the weighted objective
    assert float(npv(stats)) == passes_kept
    np.testing.assert_array_equal(npv(w), [1.0, -2.0])


class _Linear(Pretrainer):
    num_views = 1

    def compute_loss_terms(self, views, labels, training=True):
        z = self.encoder(views[0], training=training)
        return {"loss": ops.sum(ops.square(z), axis=-1), "embedding": z}


class _SpySAM(sharpness.SAM):
    calls = 0

    def gradients(self, *args, **kwargs):
        type(self).calls += 1
        return super().gradients(*args, **kwargs)


def test_pretrainer_asks_the_regulariser_for_its_step():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = _Linear(keras.Model(inputs, keras.layers.Dense(3)(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), sharpness=_SpySAM(rho=0.05), run_eagerly=True)
    logs = model.train_on_batch(np.ones((4, 4), "float32"), return_dict=True)
    assert _SpySAM.calls == 1 and np.isfinite(logs["perturbed_loss"])


def test_rho_range_is_checked_at_construction():
    for bad in (1e30, float("inf"), -0.1, sharpness.MAX_RHO * 10):
        with pytest.raises(ValueError, match="rho"):
            sharpness.SAM(rho=bad)
        with pytest.raises(ValueError, match="rho"):
            sharpness.RWSAM(rho=bad, adaptive=True)
    assert sharpness.SAM(rho=sharpness.MAX_RHO).rho == sharpness.MAX_RHO
