"""BYOL (Grill et al., 2020): predict an exponential-moving-average target network's projections."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_ssl_lt import losses
from keras_ssl_lt._checks import check_number, check_positive_int
from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.heads import frozen_copy, mlp_head, momentum_update

__all__ = ["BYOL"]


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class BYOL(Pretrainer):
    """BYOL pre-training with a symmetric `2 - 2 cos(p, sg(z_target))` loss.

    Projector `D -> 4096 (BN, ReLU) -> 256`, predictor `256 -> 4096 (BN, ReLU) -> 256` by default. The
    target encoder and projector are non-trainable copies updated as `t <- tau t + (1 - tau) o` after
    each optimizer step. `tau` is `momentum`, constant, unless `total_steps` is given: then it follows
    BYOL's cosine schedule `1 - (1 - momentum) * (cos(pi k / K) + 1) / 2`, from `momentum` to 1.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> model = ksl.BYOL(ksl.backbones.small_resnet(), augmenter=ksl.augment.simsiam_cifar(),
    ...                  projection_dim=32, projection_hidden_dim=64, prediction_hidden_dim=64)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    >>> x = np.random.randint(0, 256, (16, 32, 32, 3), dtype="uint8")
    >>> history = model.fit(x, batch_size=8, epochs=1, verbose=0)
    """

    min_batch_size = 2
    min_batch_reason = (
        "the BatchNorm layers of its projector and predictor normalise over the batch, so on one example the "
        "loss and z_std are 0"
    )

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: keras.layers.Layer | None = None,
        projection_dim: int = 256,
        projection_hidden_dim: int = 4096,
        prediction_hidden_dim: int = 4096,
        momentum: float = 0.99,
        total_steps: int | None = None,
        num_examples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, augmenter=augmenter, num_examples=num_examples, **kwargs)
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0)
        self.total_steps = None if total_steps is None else check_positive_int(total_steps, "total_steps")
        self.projection_dim = check_positive_int(projection_dim, "projection_dim")
        self.projection_hidden_dim = check_positive_int(projection_hidden_dim, "projection_hidden_dim")
        self.prediction_hidden_dim = check_positive_int(prediction_hidden_dim, "prediction_hidden_dim")
        self.projector = mlp_head(
            self.feature_dim, [self.projection_hidden_dim], self.projection_dim, name="projector", init=self.head_init
        )
        self.predictor = mlp_head(
            self.projection_dim,
            [self.prediction_hidden_dim],
            self.projection_dim,
            name="predictor",
            init=self.head_init,
        )
        self.target_encoder = frozen_copy(self.encoder, name="target_encoder")
        self.target_projector = frozen_copy(self.projector, name="target_projector")

    def current_momentum(self):
        """The EMA coefficient used after the current optimizer step."""
        if self.total_steps is None:
            return self.momentum
        step = ops.minimum(ops.cast(self.optimizer.iterations, "float32"), float(self.total_steps))
        return 1.0 - (1.0 - self.momentum) * (ops.cos(math.pi * step / self.total_steps) + 1.0) / 2.0

    @property
    def embedding_dim(self):
        """The dimension of the logged embedding (RankMe's size): the projector output."""
        return self.projection_dim

    def compute_loss_terms(self, views, labels, training=True):
        x1, x2 = views
        z1 = self.projector(self.encoder(x1, training=training), training=training)
        z2 = self.projector(self.encoder(x2, training=training), training=training)
        p1 = self.predictor(z1, training=training)
        p2 = self.predictor(z2, training=training)
        t1 = ops.stop_gradient(self.target_projector(self.target_encoder(x1, training=training), training=training))
        t2 = ops.stop_gradient(self.target_projector(self.target_encoder(x2, training=training), training=training))
        loss = losses.byol_loss(p1, t2) + losses.byol_loss(p2, t1)
        return {"loss": loss, "embedding": z1}

    def after_optimizer_step(self, terms):
        tau = self.current_momentum()
        momentum_update(self.target_encoder, self.encoder, tau)
        momentum_update(self.target_projector, self.projector, tau)

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_dim=self.projection_dim,
            projection_hidden_dim=self.projection_hidden_dim,
            prediction_hidden_dim=self.prediction_hidden_dim,
            momentum=self.momentum,
            total_steps=self.total_steps,
        )
        return config
