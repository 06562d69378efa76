"""Supervised pre-training baseline: cross-entropy with a linear head that evaluation drops."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_ssl_lt import losses
from keras_ssl_lt._checks import is_int
from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.heads import dense_initializers

__all__ = ["Supervised"]


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class Supervised(Pretrainer):
    """Supervised pre-training: encoder, a linear `num_classes` head and per-example cross-entropy.

    One augmented view per example (use e.g. `keras_ssl_lt.augment.supervised_cifar()`). Logs the training
    `accuracy` beside `loss` and `z_std` (on the encoder features). Only `model.encoder` is evaluated.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> model = ksl.Supervised(ksl.backbones.small_resnet(), num_classes=10,
    ...                        augmenter=ksl.augment.supervised_cifar())
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    >>> x = np.random.randint(0, 256, (16, 32, 32, 3), dtype="uint8")
    >>> y = np.random.randint(0, 10, (16,))
    >>> history = model.fit({"images": x, "labels": y}, batch_size=8, epochs=1, verbose=0)
    """

    num_views = 1
    extra_metrics = ("accuracy",)

    def __init__(
        self,
        encoder: keras.Model,
        num_classes: int,
        augmenter: keras.layers.Layer | None = None,
        num_examples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, augmenter=augmenter, num_examples=num_examples, **kwargs)
        if not is_int(num_classes) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2; got {num_classes!r}")
        self.num_classes = int(num_classes)
        kernel, bias = dense_initializers(self.feature_dim, self.head_init)
        self.head = keras.Sequential(
            [
                keras.Input((self.feature_dim,)),
                keras.layers.Dense(self.num_classes, kernel_initializer=kernel, bias_initializer=bias, name="logits"),
            ],
            name="head",
        )

    @property
    def embedding_dim(self):
        """The dimension of the logged embedding (RankMe's size): the encoder features."""
        return self.feature_dim

    def compute_loss_terms(self, views, labels, training=True):
        if labels is None:
            raise ValueError(
                "Supervised pre-training needs labels: batches must carry 'labels' (a dict with 'images' and "
                "'labels', or an (images, labels) tuple)"
            )
        (x,) = views
        features = self.encoder(x, training=training)
        logits = self.head(features, training=training)
        labels = ops.cast(labels, "int32")
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), labels), "float32")
        return {
            "loss": losses.cross_entropy(logits, labels),
            "embedding": features,
            "accuracy": ops.mean(correct),
        }

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config
