"""MoCo v2 (Chen et al., 2020): a momentum key encoder and a queue of negative keys."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_ssl_lt import losses
from keras_ssl_lt._checks import check_number, check_positive_int
from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.heads import frozen_copy, mlp_head, momentum_update
from keras_ssl_lt.methods.temperature import CosineTemperature, ScheduledTemperature, config_of

__all__ = ["MoCoV2"]


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class MoCoV2(ScheduledTemperature, Pretrainer):
    """MoCo v2 pre-training: InfoNCE of queries against momentum-encoded keys and a FIFO queue.

    Defaults follow the paper's ImageNet-LT recipe: dimension 128, queue 65536, momentum 0.999,
    temperature 0.2, MLP head `D -> D (ReLU) -> 128` (no BatchNorm, as in MoCo v2). The key encoder and
    key projector are non-trainable copies updated by `k <- m k + (1 - m) q` after each optimizer step;
    the batch's keys then replace the oldest entries of the queue. The queue must be at least as long as
    the (global) batch. Shuffle-BN (a multi-GPU trick) is not used.

    `temperature` may also be a schedule, `keras_ssl_lt.methods.temperature.CosineTemperature(...)` (TS, Kukleva
    et al., ICLR 2023) or its config dict `{"schedule": "cosine", ...}`, computed in the compiled step from the
    optimizer's step counter and logged as the metric `temperature` (see `SimCLR`).

    Data-parallel training (docs/scaling.md): the negatives are the queue, and the queue receives the keys
    of the whole global batch (gathered across replicas under `tf.distribute`; JAX's distributed step
    sees the global batch), so it is the same on every replica and equal to a single-device run's.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> model = ksl.MoCoV2(ksl.backbones.small_resnet(), augmenter=ksl.augment.simclr_cifar(),
    ...                    projection_dim=32, queue_size=64)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9))
    >>> x = np.random.randint(0, 256, (16, 32, 32, 3), dtype="uint8")
    >>> history = model.fit(x, batch_size=8, epochs=1, verbose=0)
    """

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: keras.layers.Layer | None = None,
        projection_dim: int = 128,
        projection_hidden_dim: int | None = None,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float | CosineTemperature | dict = 0.2,
        num_examples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, augmenter=augmenter, num_examples=num_examples, **kwargs)
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0)
        self._init_temperature(temperature)
        self.queue_size = check_positive_int(queue_size, "queue_size")
        self.projection_dim = check_positive_int(projection_dim, "projection_dim")
        hidden = self.feature_dim if projection_hidden_dim is None else projection_hidden_dim
        self.projection_hidden_dim = check_positive_int(hidden, "projection_hidden_dim")
        self.projector = mlp_head(
            self.feature_dim,
            [self.projection_hidden_dim],
            self.projection_dim,
            batch_norm=False,
            name="projector",
            init=self.head_init,
        )
        self.key_encoder = frozen_copy(self.encoder, name="key_encoder")
        self.key_projector = frozen_copy(self.projector, name="key_projector")
        self.queue = self.add_weight(
            shape=(self.queue_size, self.projection_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=0),
            trainable=False,
            name="queue",
        )
        self.queue.assign(losses.l2_normalize(self.queue.value))

    @property
    def embedding_dim(self):
        """The dimension of the logged embedding (RankMe's size): the query (projector output)."""
        return self.projection_dim

    def compute_loss_terms(self, views, labels, training=True):
        x1, x2 = views
        batch = ops.shape(x1)[0]
        if isinstance(batch, int) and batch > self.queue_size:
            raise ValueError(f"the batch ({batch}) is larger than `queue_size` ({self.queue_size})")
        q = losses.l2_normalize(self.projector(self.encoder(x1, training=training), training=training))
        k = self.key_projector(self.key_encoder(x2, training=training), training=training)
        k = ops.stop_gradient(losses.l2_normalize(k))
        queue = ops.stop_gradient(self.queue.value)
        temperature = self.current_temperature()  # a float, or a schedule's value (a scalar tensor)
        terms = {"loss": losses.info_nce(q, k, queue, temperature=temperature), "embedding": q, "keys": k}
        if self.temperature_scheduled:
            terms["temperature"] = temperature
        return terms

    def after_optimizer_step(self, terms):
        momentum_update(self.key_encoder, self.encoder, self.momentum)
        momentum_update(self.key_projector, self.projector, self.momentum)
        # The keys of the global batch (gathered over tf.distribute replicas, in replica order), so the queue
        # stays identical on every replica and equal to a single-device run's, as in MoCo's reference code.
        keys, _ = self._ksl_all_gather(ops.cast(terms["keys"], self.queue.dtype))
        batch = ops.shape(keys)[0]
        if isinstance(batch, int) and batch > self.queue_size:
            raise ValueError(f"the global batch ({batch}) is larger than `queue_size` ({self.queue_size})")
        self.queue.assign(ops.concatenate([keys, self.queue.value[: self.queue_size - batch]], axis=0))

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_dim=self.projection_dim,
            projection_hidden_dim=self.projection_hidden_dim,
            queue_size=self.queue_size,
            momentum=self.momentum,
            temperature=config_of(self.temperature),
        )
        return config
