"""PyTorch's conventions as options: `head_init="torch"`, `kernel_initializer="torch"`, pre-made views, records."""

import keras
import numpy as np
import pytest

import keras_ssl_lt as ksl
from keras_ssl_lt.experiments import build, presets, protocol
from keras_ssl_lt.experiments import conventions as conventions_mod
from keras_ssl_lt.experiments.presets import get_preset
from keras_ssl_lt.methods.heads import dense_initializers, mlp_head


def _values(layer):
    return {v.name: np.asarray(keras.ops.convert_to_numpy(v)) for v in layer.weights}


def test_torch_head_init_matches_nn_linear_bounds():
    keras.utils.set_random_seed(0)
    head = mlp_head(256, [512], 64, init="torch")
    w0 = _values(head.get_layer("dense_0"))["kernel"]
    out = _values(head.get_layer("dense_out"))
    # torch.nn.Linear: kernel and bias uniform in +-1/sqrt(fan_in); the std of U(-b, b) is b / sqrt(3).
    for kernel, fan_in in ((w0, 256), (out["kernel"], 512)):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.95 * bound
        assert abs(kernel.std() / (bound / np.sqrt(3)) - 1) < 0.05
    assert np.abs(out["bias"]).max() <= 1 / np.sqrt(512) and np.abs(out["bias"]).max() > 0
    keras_head = mlp_head(256, [512], 64)
    assert np.all(_values(keras_head.get_layer("dense_out"))["bias"] == 0)  # Keras: zero bias


def test_torch_conv_init_matches_nn_conv2d_bounds():
    keras.utils.set_random_seed(0)
    enc = ksl.backbones.small_resnet(kernel_initializer="torch")
    kernel = _values(enc.get_layer("stage3_block1_conv2"))["kernel"]  # 3x3, 64 -> 64
    bound = 1 / np.sqrt(3 * 3 * 64)
    assert np.abs(kernel).max() <= bound and abs(kernel.std() / (bound / np.sqrt(3)) - 1) < 0.05
    he = _values(ksl.backbones.small_resnet().get_layer("stage3_block1_conv2"))["kernel"]
    # He-normal fan_out has six times the variance when channels in and out are equal.
    assert abs(he.var() / kernel.var() / 6 - 1) < 0.1


def test_head_init_is_validated_and_saved(tmp_path):
    enc = ksl.backbones.small_resnet((8, 8, 3), width=0.25)
    with pytest.raises(ValueError, match="head_init"):
        ksl.SimSiam(enc, head_init="pytorch")
    with pytest.raises(ValueError, match="kernel_initializer"):
        ksl.backbones.small_resnet(kernel_initializer="pytorch")
    with pytest.raises(ValueError, match="head_init"):
        dense_initializers(4, "xavier")
    model = ksl.Supervised(enc, num_classes=3, head_init="torch")
    model.compile(optimizer=ksl.optimizers.SGD(0.1))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.head_init == "torch" and loaded.get_config()["head_init"] == "torch"
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_premade_views_replace_the_augmenter():
    """With `views`, the encoder sees exactly the given views (the augmenter is not called)."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(8, 2, 8, 8, 3)).astype("float32")
    model = ksl.SimSiam(
        ksl.backbones.small_resnet((8, 8, 3), width=0.25),
        augmenter=ksl.augment.simsiam_cifar(crop_size=8),
        projection_dim=8,
        projection_hidden_dim=8,
        prediction_hidden_dim=4,
    )
    model.compile(optimizer=ksl.optimizers.SGD(0.0))  # lr 0: evaluate the loss without moving
    got = model.evaluate({"views": x}, batch_size=8, verbose=0, return_dict=True)["loss"]
    views = [keras.ops.convert_to_tensor(x[:, 0]), keras.ops.convert_to_tensor(x[:, 1])]
    terms = model.compute_loss_terms(views, None, training=False)
    np.testing.assert_allclose(got, float(np.mean(keras.ops.convert_to_numpy(terms["loss"]))), rtol=1e-5)
    history = model.fit({"views": x}, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_premade_views_bad_input_is_named():
    model = ksl.SimCLR(ksl.backbones.small_resnet((8, 8, 3), width=0.25), projection_dim=8, projection_hidden_dim=8)
    model.compile(optimizer=ksl.optimizers.SGD(0.1))
    one_view = np.zeros((8, 1, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match="num_views=2"):
        model.fit({"views": one_view}, batch_size=4, epochs=1, verbose=0)
    both = {"views": np.zeros((8, 2, 8, 8, 3), "float32"), "images": np.zeros((8, 8, 8, 3), "uint8")}
    with pytest.raises(ValueError, match="exactly one of 'images'"):
        model.fit(both, batch_size=4, epochs=1, verbose=0)


def test_presets_name_their_weight_decay_convention():
    assert get_preset("cpu")["optimizer"]["weight_decay_convention"] == "keras"
    for name in ("gpu", "paper"):
        assert get_preset(name)["optimizer"]["weight_decay_convention"] == "coupled"
    conv = conventions_mod.conventions(get_preset("paper"))
    assert conv["weight_decay"] == "coupled" and conv["precision"] == "mixed_bfloat16"
    # the paper's code's initialisation (PyTorch's defaults): Keras' cost SimSiam ~4 kNN points (docs/fidelity.md)
    assert conv["conv_init"] == "torch" and set(conv["head_init"].values()) == {"torch"}
    assert conventions_mod.conventions(get_preset("cpu"))["conv_init"] == "he_normal_fan_out"
    with pytest.raises(ValueError, match="weight_decay_convention"):
        conventions_mod.weight_decay_convention({"optimizer": {"weight_decay_convention": "torch"}})


def test_protocol_compiles_the_convention_it_records():
    cfg = presets.smoke_config()
    cfg["optimizer"]["weight_decay_convention"] = "coupled"
    cfg["backbone"]["kernel_initializer"] = "torch"
    cfg["methods"]["simclr"]["head_init"] = "torch"
    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype="uint8")
    y = np.repeat(np.arange(4), 16)
    source = ksl.data.from_arrays(x, y)
    subset = ksl.data.make_subset(y, profile="exp", ratio=0.5)
    model = build.build_pretrainer("simclr", cfg, num_classes=4, num_examples=len(y))
    assert model.head_init == "torch"
    protocol.pretrain(model, "simclr", source, subset, cfg, verbose=0)
    assert isinstance(model.optimizer, ksl.optimizers.SGD) and not model.optimizer.decoupled_weight_decay
    conv = conventions_mod.conventions(cfg)
    assert conv == {**conv, "weight_decay": "coupled", "conv_init": "torch"} and conv["head_init"]["simclr"] == "torch"
