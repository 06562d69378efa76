"""SDCLR (Jiang, Chen, Mortazavi, Wang, ICML 2021): SimCLR against a pruned self-competitor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_ssl_lt._checks import check_bool, check_choice
from keras_ssl_lt.methods.base import batchnorm_variables
from keras_ssl_lt.methods.pruning import PRUNE_SCOPES, PrunedTwin, check_prune_layers, check_prune_ratio
from keras_ssl_lt.methods.simclr import SimCLR

__all__ = ["SDCLR", "PruneMaskRefresh"]


class PruneMaskRefresh(keras.callbacks.Callback):
    """Recomputes an SDCLR model's pruning masks at the start of every epoch (`SDCLR.refresh_masks`).

    SDCLR's released code prunes anew from the current dense weights at the start of each epoch
    (`prune/prune_simCLR.py`, `train_prune`). `SDCLR.fit_callbacks` adds this callback to every `fit`, so it
    need not be passed by hand.

    Example:

    >>> PruneMaskRefresh().__class__.__name__
    'PruneMaskRefresh'
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.refresh_masks()


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class SDCLR(SimCLR):
    """Self-Damaging Contrastive Learning: NT-Xent between the dense model and its pruned twin.

    The online encoder and projector (dense) embed view 1; a pruned twin of them, sharing their weights
    through a magnitude-pruning mask, embeds view 2; NT-Xent (SimCLR's loss over the 2B views, both
    directions) contrasts the two. Examples the pruned model has "forgotten" (the paper argues: mostly
    rare ones) get large losses and so more weight in training. Checked against the paper (Sec. 3) and the
    authors' code (github.com/VITA-Group/SDCLR):

    - pruned twin: each pruned kernel `w` is used as `w * mask`, so the twin's loss also trains the shared
      dense weights (zero gradient where masked; `prune_conv2d` in `models/resnet_prune.py`);
    - masks: magnitude pruning of every convolution kernel of the encoder (first convolution and shortcut
      convolutions included; BatchNorm, biases and projector not pruned), with one threshold over all
      pruned kernels together (`prune/mask.py`, `Mask.magnitudePruning`; `prune_scope="layer"` prunes each
      kernel on its own instead), recomputed from the current dense weights at the start of every epoch
      (`prune/prune_simCLR.py`; here by the `PruneMaskRefresh` callback that `fit` adds itself). The masks
      are set once at construction too, so `train_on_batch` and `evaluate` work before any `fit`;
    - `prune_ratio=0.9`: the fraction pruned in the authors' CIFAR-10/100-LT runs
      (`cmds/execute_hist/camera_ready.sh`; 0.3 on ImageNet-100-LT);
    - dual BN (`dual_bn=True`, as in those runs): the twin has its own BatchNorm layers, with their own
      affine parameters (trained by the twin's loss only) *and* their own moving statistics, in the
      encoder and in the projector (`batch_norm_multiple` and `proj_head` in
      `models/resnet_prune_multibn.py`); the projector's Dense weights are shared and not pruned. The
      dense model's statistics move only with the dense branch;
    - view 1 through the dense branch, view 2 through the pruned one, NT-Xent over the 2B views with
      temperature 0.2 (the CIFAR scripts' `--temp`; 0.3 on ImageNet-100-LT).

    The gradient is that of the loss through both branches at once. The released code gets the same
    gradient in two backward passes (the chain rule split, for a distributed-PyTorch limitation), running
    the pruned branch twice per step in training mode, so its BatchNorm statistics there move twice per step
    (momentum effectively 0.9^2 in Keras terms); here they move once, like the dense branch's. The
    projector is SimCLR's `D -> projection_hidden_dim (BN, ReLU) -> projection_dim`; the released code's
    head has three layers (`D -> D -> D -> 128`, BN after each). Features for evaluation (`model.encoder`,
    `predict`) come from the dense encoder.

    Cost: one encoder and projector pass per view, as in SimCLR (the pruned branch replaces the second
    dense pass), plus a product `w * mask` per pruned kernel and step; with SAM every pass runs twice. The
    masks take as much memory as the pruned kernels (float32).

    Args:
        encoder: a built `keras.Model` from images to flat features.
        augmenter: the view augmenter (see `Pretrainer`).
        projection_dim, projection_hidden_dim: the shared projector's sizes (SimCLR's defaults).
        temperature: NT-Xent temperature, a positive number (0.2), or a TS schedule as `SimCLR` takes it.
        prune_ratio: fraction of the pruned kernels' weights masked, in [0, 1) (0.9).
        prune_layers: `None` (every Conv/DepthwiseConv/Dense/EinsumDense kernel of the encoder) or the names
            of the encoder layers whose kernels are pruned.
        prune_scope: `"global"` (one threshold over all pruned kernels, the released code) or `"layer"`.
        dual_bn: give the pruned twin its own BatchNorm parameters and statistics (True); with False it
            shares the dense BatchNorm layers (its statistics then move with both branches).
        global_negatives, num_examples, head_init: as in `SimCLR` / `Pretrainer`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_ssl_lt.methods.sdclr import SDCLR
    >>> inputs = keras.Input((4, 4, 3))
    >>> x = keras.layers.Conv2D(8, 3, use_bias=False)(inputs)  # 216 weights
    >>> x = keras.layers.BatchNormalization()(x)
    >>> encoder = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    >>> model = SDCLR(encoder, projection_dim=8, projection_hidden_dim=16, prune_ratio=0.9)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1))
    >>> logs = model.train_on_batch(np.random.rand(4, 4, 4, 3).astype("float32"), return_dict=True)
    >>> int(keras.ops.sum(model.pruned_encoder.masks[0]))  # ceil(0.9 * 216) = 195 weights masked
    21
    """

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: keras.layers.Layer | None = None,
        projection_dim: int = 128,
        projection_hidden_dim: int = 2048,
        temperature: float | dict | Any = 0.2,
        prune_ratio: float = 0.9,
        prune_layers: Sequence[str] | None = None,
        prune_scope: str = "global",
        dual_bn: bool = True,
        global_negatives: bool = True,
        num_examples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            encoder,
            augmenter=augmenter,
            projection_dim=projection_dim,
            projection_hidden_dim=projection_hidden_dim,
            temperature=temperature,
            global_negatives=global_negatives,
            num_examples=num_examples,
            **kwargs,
        )
        self.prune_ratio = check_prune_ratio(prune_ratio)
        layers = check_prune_layers(prune_layers)
        self.prune_layers = layers  # a tuple (a list attribute would become a Keras-tracked list)
        self.prune_scope = check_choice(prune_scope, "prune_scope", PRUNE_SCOPES)
        self.dual_bn = check_bool(dual_bn, "dual_bn")
        self.pruned_encoder = PrunedTwin(
            self.encoder, self.prune_ratio, layers, self.prune_scope, self.dual_bn, name="pruned_encoder"
        )
        # The projector is shared and not pruned; with dual BN the twin has its own BatchNorm there too.
        self.pruned_projector = PrunedTwin(self.projector, 0.0, (), dual_bn=self.dual_bn, name="pruned_projector")

    # ------------------------------------------------------------------ masks
    def refresh_masks(self) -> None:
        """Recomputes the pruning masks from the encoder's current weights (done by `fit` at each epoch start).

        Safe between steps of a `fit` on every backend (on JAX the values `fit` holds are written back first).
        """
        self._ksl_sync_state()
        self.pruned_encoder.refresh(self.encoder)

    def fit_callbacks(self):
        # After the base's (a temperature schedule's, when `temperature` is one).
        return [*super().fit_callbacks(), PruneMaskRefresh()]

    def _batchnorm_variables(self):
        # The twin's own statistics are restored after SAM's second pass too (bn_update="first").
        return batchnorm_variables(self) + self.pruned_encoder.statistics + self.pruned_projector.statistics

    # ------------------------------------------------------------------ loss
    def pruned_features(self, images, training: bool = False):
        """The pruned twin's projector outputs for (preprocessed) `images`."""
        h = self.pruned_encoder.forward(self.encoder, images, training=training)
        return self.pruned_projector.forward(self.projector, h, training=training)

    def compute_loss_terms(self, views, labels, training=True):
        x1, x2 = views
        z1 = self.projector(self.encoder(x1, training=training), training=training)
        z2 = self.pruned_features(x2, training=training)
        return self.contrast(z1, z2)  # SimCLR's NT-Xent (temperature, schedule, negatives) between the branches

    def get_config(self):
        config = super().get_config()
        config.update(
            prune_ratio=self.prune_ratio,
            prune_layers=None if self.prune_layers is None else list(self.prune_layers),
            prune_scope=self.prune_scope,
            dual_bn=self.dual_bn,
        )
        return config
