"""The method and regulariser registries: one name per method and per regulariser."""

import numpy as np
import pytest

from keras_ssl_lt.methods import SimCLR, SimSiam, registry
from keras_ssl_lt.rwsam import registry as reg_registry


def test_method_registry_names_classes_and_refusals():
    assert registry.method_names()[:5] == ("simsiam", "simclr", "moco_v2", "byol", "supervised")
    assert registry.get_method("simsiam") is SimSiam
    with pytest.raises(ValueError, match="`method` must be one of"):
        registry.get_method("swav")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_method("simclr", SimCLR)
    with pytest.raises(TypeError, match=r"subclass of keras_ssl_lt.methods.Pretrainer"):
        registry.register_method("mine", dict)
    with pytest.raises(ValueError, match="lower-case identifier"):
        registry.register_method("My-Method", SimCLR)
    with pytest.raises(ValueError, match="built-in"):
        registry.unregister_method("simclr")


def test_a_registered_method_is_built_by_the_protocol():
    from keras_ssl_lt.experiments.build import build_pretrainer
    from keras_ssl_lt.experiments.presets import get_preset

    class Mine(SimCLR):
        pass

    registry.register_method("mine", Mine)
    try:
        cfg = get_preset("smoke")
        cfg["methods"]["mine"] = dict(cfg["methods"]["simclr"])
        assert type(build_pretrainer("mine", cfg, num_classes=4)) is Mine
    finally:
        registry.unregister_method("mine")
    assert "mine" not in registry.method_names()


def test_regularizer_menu_defaults_and_refusals():
    import keras_ssl_lt as ksl

    assert reg_registry.regularizer_names() == ("none", "sam", "asam", "rwsam_rank", "rwsam_kde")
    sam, cbs = reg_registry.build_regularizer("sam", {})
    assert type(sam) is ksl.SAM and sam.rho == 0.05 and not sam.adaptive and cbs == []
    asam, _ = reg_registry.build_regularizer("asam", {})
    assert asam.adaptive and asam.rho == 7.0  # the authors' CIFAR radius
    labels = np.repeat([0, 1, 2], [6, 3, 1])
    rw, _ = reg_registry.build_regularizer("rwsam_rank", {"rank_base": 2.0}, labels=labels, class_counts=[6, 3, 1])
    np.testing.assert_allclose(np.unique(np.asarray(rw.weights) / np.min(rw.weights)), [1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="`sharpness` must be one of"):
        reg_registry.build_regularizer("sam2")
    with pytest.raises(ValueError, match="unknown sharpness setting"):
        reg_registry.build_regularizer("sam", {"radius": 1.0})
    with pytest.raises(ValueError, match=r"sharpness.rho"):
        reg_registry.build_regularizer("asam", {"rho": -1.0})
    with pytest.raises(ValueError, match="needs `labels`"):
        reg_registry.build_regularizer("rwsam_rank", {})
    with pytest.raises(ValueError, match="needs `kde_images`"):
        reg_registry.build_regularizer("rwsam_kde", {})


def test_bn_update_setting_reaches_the_regularizer():
    reg, _ = reg_registry.build_regularizer("asam", {"bn_update": "both"})
    assert reg.bn_update == "both" and reg_registry.build_regularizer("sam")[0].bn_update == "first"
    with pytest.raises(ValueError, match=r"sharpness.bn_update"):
        reg_registry.build_regularizer("sam", {"bn_update": "second"})
