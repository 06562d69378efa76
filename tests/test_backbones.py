"""ResNet encoders: shapes, parameter counts, FLOPs, a PyTorch reference, training and .keras round trip.

Models are built with `kernel_initializer="zeros"` and then given random numpy weights where values
matter: under JAX every new kernel shape compiles its own random-normal kernel (seconds each on a
loaded CPU), and the tests need not pay for that.
"""

import keras
import numpy as np
import pytest
from helpers import run_precision_test, run_serialization_test

from keras_ssl_lt import backbones
from keras_ssl_lt.backbones import count_flops, resnet18_cifar, resnet50, small_resnet


def _randomise(model, seed=0):
    """Random conv/BN weights and BN statistics, so outputs depend on every weight."""
    rng = np.random.default_rng(seed)
    new = []
    for w in model.weights:
        shape = tuple(w.shape)
        path = w.path
        if "moving_variance" in path:
            new.append(rng.uniform(0.5, 1.5, shape))
        elif "moving_mean" in path or "beta" in path:
            new.append(rng.normal(0, 0.1, shape))
        elif "gamma" in path:
            new.append(rng.uniform(0.5, 1.5, shape))
        else:
            fan_in = int(np.prod(shape[:-1]))
            new.append(rng.normal(0, np.sqrt(2.0 / fan_in), shape))
    model.set_weights([a.astype("float32") for a in new])
    return model


@pytest.fixture(scope="module")
def small():
    return _randomise(small_resnet(kernel_initializer="zeros"))


def test_parameter_counts_match_torchvision():
    # torchvision resnet18 with a 3x3 stride-1 stem and no fc: 11,168,832; resnet50 without fc: 23,508,032.
    for builder, expected, dim in ((resnet18_cifar, 11_168_832, 512), (resnet50, 23_508_032, 2048)):
        m = builder(kernel_initializer="zeros")
        trainable = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
        assert trainable == expected
        assert tuple(m.output.shape) == (None, dim)
        assert not any(
            getattr(layer, "use_bias", False) for layer in m.layers if isinstance(layer, keras.layers.Conv2D)
        )


def test_flops_match_published_and_hand_counts():
    # Widely quoted: CIFAR ResNet-18 0.56 GMACs, ResNet-50 at 224 4.09 GMACs (conv only, no fc).
    assert count_flops(resnet18_cifar(kernel_initializer="zeros"), multiply_accumulates=True) == 555_417_600
    assert abs(count_flops(resnet50(kernel_initializer="zeros"), True) / 4.09e9 - 1) < 0.005
    # By hand for a conv + dense model.
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inp)  # 4*4*4*3*3*3 = 1728
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5)(x)  # 64*5 = 320
    assert count_flops(keras.Model(inp, out)) == 2 * (1728 + 320)


def test_small_resnet_documented_size(small):
    trainable = sum(int(np.prod(w.shape)) for w in small.trainable_weights)
    assert trainable == 307_536
    assert count_flops(small, multiply_accumulates=True) == 16_171_008
    assert tuple(small.output.shape) == (None, 128)


def test_layer_conventions():
    m = small_resnet(width=0.5, name="enc", kernel_initializer="zeros")
    assert m.name == "enc"
    assert tuple(m.output.shape) == (None, 64)
    bns = [la for la in m.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert bns and all(la.momentum == 0.9 and la.epsilon == 1e-5 for la in bns)


def test_default_initializer_is_he_normal_fan_out():
    # Building a whole model with the default initialiser is slow under JAX (see module docstring),
    # so check the factory the builders use by default and sample it once.
    assert backbones._get_initializer(None) is backbones.he_normal_fan_out
    init = backbones.he_normal_fan_out()
    cfg = init.get_config()
    assert cfg["scale"] == 2.0 and cfg["mode"] == "fan_out" and cfg["distribution"] == "untruncated_normal"
    kernel = keras.ops.convert_to_numpy(init((3, 3, 16, 64)))
    assert abs(kernel.std() / np.sqrt(2.0 / (3 * 3 * 64)) - 1) < 0.05


def _torch_reference_forward(model, x, bottleneck):
    """An independent PyTorch forward pass (inference-mode BN) using the Keras model's weights."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    W = {w.path: torch.tensor(keras.ops.convert_to_numpy(w)) for w in model.weights}

    def conv(t, name, stride, pad):
        k = W[f"{name}/kernel"].permute(3, 2, 0, 1)
        return F.conv2d(t, k, stride=stride, padding=pad)

    def bn(t, name):
        return F.batch_norm(
            t,
            W[f"{name}/moving_mean"],
            W[f"{name}/moving_variance"],
            W[f"{name}/gamma"],
            W[f"{name}/beta"],
            training=False,
            eps=1e-5,
        )

    names = {w.path.split("/")[0] for w in model.weights}
    t = torch.tensor(x).permute(0, 3, 1, 2)
    if bottleneck:
        t = F.max_pool2d(F.relu(bn(conv(t, "stem_conv", 2, 3), "stem_bn")), 3, 2, 1)
    else:
        t = F.relu(bn(conv(t, "stem_conv", 1, 1), "stem_bn"))
    s = 1
    while f"stage{s}_block1_conv1" in names:
        b = 1
        while f"stage{s}_block{b}_conv1" in names:
            n = f"stage{s}_block{b}"
            stride = 2 if (b == 1 and s > 1) else 1
            if bottleneck:
                y = F.relu(bn(conv(t, f"{n}_conv1", 1, 0), f"{n}_bn1"))
                y = F.relu(bn(conv(y, f"{n}_conv2", stride, 1), f"{n}_bn2"))
                y = bn(conv(y, f"{n}_conv3", 1, 0), f"{n}_bn3")
            else:
                y = F.relu(bn(conv(t, f"{n}_conv1", stride, 1), f"{n}_bn1"))
                y = bn(conv(y, f"{n}_conv2", 1, 1), f"{n}_bn2")
            if f"{n}_down_conv" in names:
                t = bn(conv(t, f"{n}_down_conv", stride, 0), f"{n}_down_bn")
            t = F.relu(y + t)
            b += 1
        s += 1
    return t.mean(dim=(2, 3)).numpy()


def test_small_resnet_matches_pytorch_reference(small):
    x = np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(small(x, training=False))
    np.testing.assert_allclose(ours, _torch_reference_forward(small, x, bottleneck=False), rtol=1e-4, atol=1e-4)


def test_resnet50_geometry_matches_pytorch_reference():
    m = _randomise(resnet50(input_shape=(40, 40, 3), width=1 / 16, kernel_initializer="zeros"), seed=2)
    x = np.random.default_rng(3).normal(size=(2, 40, 40, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(m(x, training=False))
    assert ours.shape == (2, 128)
    np.testing.assert_allclose(ours, _torch_reference_forward(m, x, bottleneck=True), rtol=1e-4, atol=1e-4)


def test_small_resnet_trains_on_a_cifar_batch(small, cifar10_small):
    x = cifar10_small["x_train"][:16].astype("float32") / 255.0
    y = cifar10_small["y_train"][:16]
    model = keras.Sequential([small, keras.layers.Dense(10)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    before = [keras.ops.convert_to_numpy(w).copy() for w in small.trainable_weights]
    stats_before = keras.ops.convert_to_numpy(small.get_layer("stem_bn").moving_mean).copy()
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = [keras.ops.convert_to_numpy(w) for w in small.trainable_weights]
    assert all(np.all(np.isfinite(a)) for a in after)
    assert sum(not np.allclose(a, b) for a, b in zip(after, before, strict=True)) == len(before)
    assert not np.allclose(keras.ops.convert_to_numpy(small.get_layer("stem_bn").moving_mean), stats_before)
    _randomise(small)  # leave the shared fixture as it was for the other tests


def test_keras_round_trip_reproduces_outputs(small, tmp_path):
    x = np.random.default_rng(4).normal(size=(4, 32, 32, 3)).astype("float32")  # same shapes as above
    loaded = run_serialization_test(small, x, tmp_path)
    assert [w.path for w in loaded.weights] == [w.path for w in small.weights]


def test_mixed_bfloat16_forward():
    x = np.random.default_rng(5).normal(size=(2, 32, 32, 3)).astype("float32")
    model = run_precision_test(lambda: small_resnet(width=0.25, kernel_initializer="zeros"), x)
    assert model.get_layer("stem_bn").compute_dtype == "bfloat16"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: small_resnet(width=0), "width"),
        (lambda: small_resnet(width="wide"), "width"),
        (lambda: small_resnet(input_shape=(32, 32)), "input_shape"),
        (lambda: small_resnet(blocks=(1, 1, 1)), "blocks"),
        (lambda: resnet18_cifar(kernel_initializer="not_an_initializer"), "kernel_initializer"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_count_flops_needs_known_shape():
    with pytest.raises(ValueError, match="model"):
        count_flops(small_resnet(input_shape=(None, None, 3), kernel_initializer="zeros"))


def test_module_exports():
    assert set(backbones.__all__) >= {"resnet18_cifar", "resnet50", "small_resnet", "count_flops"}
