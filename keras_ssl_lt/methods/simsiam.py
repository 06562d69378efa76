"""SimSiam (Chen & He, 2021): symmetric negative cosine between predictions and stop-gradient projections."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_ssl_lt import losses
from keras_ssl_lt._checks import check_positive_int
from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.heads import mlp_head

__all__ = ["SimSiam"]


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class SimSiam(Pretrainer):
    """SimSiam pre-training, with the CIFAR heads of the rwSAM authors' code by default.

    Projector `D -> 2048 (BN, ReLU) -> 2048 (BN, no affine)` (`projector_layers=2`; the ImageNet recipe
    uses 3), predictor `2048 -> 512 (BN, ReLU) -> 2048`. The per-example loss is
    `0.5 * (-cos(p1, sg(z2)) - cos(p2, sg(z1)))`, so its minimum is -1.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> model = ksl.SimSiam(ksl.backbones.small_resnet(), augmenter=ksl.augment.simsiam_cifar(),
    ...                     projection_dim=64, projection_hidden_dim=64, prediction_hidden_dim=16)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9))
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
        projection_dim: int = 2048,
        projection_hidden_dim: int = 2048,
        prediction_hidden_dim: int = 512,
        projector_layers: int = 2,
        num_examples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, augmenter=augmenter, num_examples=num_examples, **kwargs)
        self.projector_layers = check_positive_int(projector_layers, "projector_layers")
        self.projection_dim = check_positive_int(projection_dim, "projection_dim")
        self.projection_hidden_dim = check_positive_int(projection_hidden_dim, "projection_hidden_dim")
        self.prediction_hidden_dim = check_positive_int(prediction_hidden_dim, "prediction_hidden_dim")
        self.projector = mlp_head(
            self.feature_dim,
            [self.projection_hidden_dim] * (self.projector_layers - 1),
            self.projection_dim,
            last_batch_norm=True,
            last_affine=False,
            name="projector",
            init=self.head_init,
        )
        self.predictor = mlp_head(
            self.projection_dim,
            [self.prediction_hidden_dim],
            self.projection_dim,
            name="predictor",
            init=self.head_init,
        )

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
        loss = 0.5 * (
            losses.negative_cosine_similarity(p1, ops.stop_gradient(z2))
            + losses.negative_cosine_similarity(p2, ops.stop_gradient(z1))
        )
        return {"loss": loss, "embedding": z1}

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_dim=self.projection_dim,
            projection_hidden_dim=self.projection_hidden_dim,
            prediction_hidden_dim=self.prediction_hidden_dim,
            projector_layers=self.projector_layers,
        )
        return config
