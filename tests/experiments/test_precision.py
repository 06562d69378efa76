"""The `precision` setting: the gpu/paper presets run mixed_bfloat16, every record says which precision it ran."""

import keras
import numpy as np
import pytest

from keras_ssl_lt.experiments import RunSpec, evaldata, protocol
from keras_ssl_lt.experiments.conventions import precision
from keras_ssl_lt.experiments.presets import get_preset


def test_presets_declare_their_precision():
    assert get_preset("gpu")["precision"] == "mixed_bfloat16"
    assert get_preset("paper")["precision"] == "mixed_bfloat16"
    assert get_preset("cpu")["precision"] == "float32" and get_preset("smoke")["precision"] == "float32"
    assert precision({}) == "float32"  # a config written before the setting: what it ran
    with pytest.raises(ValueError, match="`precision` must be one of"):
        precision({"precision": "mixed_float16"})


def test_a_bf16_run_trains_in_bf16_records_it_and_restores_the_policy():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 16)
    x = (rng.integers(0, 60, (y.size, 8, 8, 3)) + 40 * y[:, None, None, None]).astype("uint8")
    data = evaldata.EvalData.from_arrays((x, y), (x[::4], y[::4]))
    cfg = get_preset("smoke", precision="mixed_bfloat16")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model.encoder.layers[1].compute_dtype)

    before = keras.config.dtype_policy().name
    out = protocol.run(RunSpec("simclr", ratio=0.5, preset="smoke"), cfg, data, callbacks=[Spy()])
    assert seen == ["bfloat16"]
    assert out["conventions"]["precision"] == "mixed_bfloat16"
    assert np.isfinite(out["history"]["loss"]).all() and 0.0 <= out["metrics"]["knn_acc"] <= 1.0
    assert keras.config.dtype_policy().name == before  # the global policy is restored
    # the float32 floor of the same seed is another cache entry than the bf16 floor
    from keras_ssl_lt.experiments.evaluate import floor_metrics

    assert len(data.floor_cache) == 1
    floor_metrics(get_preset("smoke"), data, 0, class_groups={"many": [0, 1], "medium": [2], "few": [3]})
    assert len(data.floor_cache) == 2
