"""SimCLR (Chen et al., 2020): NT-Xent over the 2B views of a batch."""

from __future__ import annotations

from typing import Any

import keras

from keras_ssl_lt import losses
from keras_ssl_lt._checks import check_bool, check_positive_int
from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.heads import mlp_head
from keras_ssl_lt.methods.temperature import CosineTemperature, ScheduledTemperature, config_of
from keras_ssl_lt.training.distributed import num_replicas

__all__ = ["SimCLR"]


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class SimCLR(ScheduledTemperature, Pretrainer):
    """SimCLR pre-training: projector `D -> 2048 (BN, ReLU) -> 128` and the NT-Xent loss.

    The per-example loss averages the two directions (view 1 as anchor, view 2 as anchor), so its batch
    mean is the usual NT-Xent over 2B anchors. `temperature` defaults to 0.5 (the common CIFAR value; the
    paper's semi-synthetic experiment does not state one).

    `temperature` may also be a schedule: `keras_ssl_lt.methods.temperature.CosineTemperature(0.1, 1.0, 400)`
    (TS, Kukleva et al., ICLR 2023) or its config dict `{"schedule": "cosine", "tau_min": 0.1, "tau_max": 1.0,
    "period_epochs": 400}`. Its value is computed in the compiled step from the optimizer's step counter and
    each `fit`'s steps per epoch, and logged as the metric `temperature`.

    Data-parallel training (docs/scaling.md): with `global_negatives=True` (default) every anchor is
    contrasted with the views of the whole global batch, gathered across replicas, as multi-GPU SimCLR
    does, so the loss and its gradient equal the single-device ones on the same global batch. With
    `False` each replica takes negatives only from its own slice of the batch (cheaper, but the loss then
    depends on the number of replicas). On one device both are the same.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> model = ksl.SimCLR(ksl.backbones.small_resnet(), augmenter=ksl.augment.simclr_cifar(),
    ...                    projection_dim=32, projection_hidden_dim=64)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.3, momentum=0.9))
    >>> x = np.random.randint(0, 256, (16, 32, 32, 3), dtype="uint8")
    >>> history = model.fit(x, batch_size=8, epochs=1, verbose=0)
    """

    min_batch_size = 2
    min_batch_reason = (
        "NT-Xent contrasts each example with the others of its batch and the projector's BatchNorm normalises "
        "over the batch, so on one example the loss and z_std are 0"
    )

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: keras.layers.Layer | None = None,
        projection_dim: int = 128,
        projection_hidden_dim: int = 2048,
        temperature: float | CosineTemperature | dict = 0.5,
        global_negatives: bool = True,
        num_examples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, augmenter=augmenter, num_examples=num_examples, **kwargs)
        self._init_temperature(temperature)
        self.global_negatives = check_bool(global_negatives, "global_negatives")
        self.projection_dim = check_positive_int(projection_dim, "projection_dim")
        self.projection_hidden_dim = check_positive_int(projection_hidden_dim, "projection_hidden_dim")
        self.projector = mlp_head(
            self.feature_dim, [self.projection_hidden_dim], self.projection_dim, name="projector", init=self.head_init
        )

    @property
    def embedding_dim(self):
        """The dimension of the logged embedding (RankMe's size): the projector output."""
        return self.projection_dim

    def compute_loss_terms(self, views, labels, training=True):
        x1, x2 = views
        z1 = self.projector(self.encoder(x1, training=training), training=training)
        z2 = self.projector(self.encoder(x2, training=training), training=training)
        return self.contrast(z1, z2)

    def contrast(self, z1, z2):
        """The loss terms of NT-Xent between the projections `z1`, `z2` of the two views (SDCLR: dense, pruned)."""
        # A float, or with a schedule its value at this step (a scalar tensor computed inside the step).
        temperature = self.current_temperature()
        if self.global_negatives:
            # Identity on one device and under JAX's keras.distribution (the step sees the global batch).
            (g1, g2), offset = self._ksl_all_gather([z1, z2])
            loss = losses.nt_xent(z1, z2, temperature, global_z1=g1, global_z2=g2, offset=offset)
        else:
            # Per-replica negatives. Under tf.distribute z1, z2 are the replica's slice already; a JAX
            # distributed step sees the global batch, so the replicas' blocks are masked out instead.
            groups = num_replicas() if keras.backend.backend() == "jax" else 1
            loss = losses.nt_xent(z1, z2, temperature, num_groups=groups)
        terms = {"loss": loss, "embedding": z1}
        if self.temperature_scheduled:
            terms["temperature"] = temperature
        return terms

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_dim=self.projection_dim,
            projection_hidden_dim=self.projection_hidden_dim,
            temperature=config_of(self.temperature),
            global_negatives=self.global_negatives,
        )
        return config
