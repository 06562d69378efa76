"""The presets: the documented settings of SimSiam, SimCLR, MoCo v2 and supervised views; overrides."""

import pytest

from keras_ssl_lt import augment


def test_presets_have_the_documented_settings():
    s = augment.simsiam_cifar().get_config()
    assert s["crop"] == "resized" and s["crop_size"] == 32 and s["flip"]
    assert s["scale"] == (0.2, 1.0) and s["jitter"] == (0.4, 0.4, 0.4, 0.1) and s["jitter_p"] == 0.8
    assert s["grayscale_p"] == 0.2 and s["blur_p"] == 0.0 and s["mean"] == augment.CIFAR10_MEAN
    simclr = augment.simclr_cifar().get_config()
    assert {k: v for k, v in simclr.items() if k != "name"} == {k: v for k, v in s.items() if k != "name"}
    m = augment.moco_v2_imagenet().get_config()
    assert m["crop_size"] == 224 and m["blur_p"] == 0.5 and m["blur_sigma"] == (0.1, 2.0)
    assert m["std"] == augment.IMAGENET_STD and m["eval_crop_fraction"] == 0.875
    assert augment.moco_v2_imagenet().stages[-1].kernel_for(224) == 23
    sup = augment.supervised_cifar().get_config()
    assert sup["crop"] == "pad" and sup["padding"] == 4 and sup["jitter"] is None and sup["flip"]
    assert sup["grayscale_p"] == 0.0 and sup["blur_p"] == 0.0


def test_overrides_replace_any_argument_and_are_checked():
    aug = augment.simsiam_cifar(crop_size=16, scale=(0.08, 1.0), blur_p=0.5, seed=3)
    cfg = aug.get_config()
    assert cfg["crop_size"] == 16 and cfg["scale"] == (0.08, 1.0) and cfg["blur_p"] == 0.5 and cfg["seed"] == 3
    with pytest.raises(ValueError, match="`grayscale_p`"):
        augment.supervised_cifar(grayscale_p=3)
    with pytest.raises(ValueError, match="colour"):
        augment.simsiam_cifar(colour=True)
