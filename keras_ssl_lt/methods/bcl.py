"""BCL (Zhou et al., ICML 2022, "Contrastive Learning with Boosted Memorization"): contrastive learning whose views
get stronger augmentation for the examples the network memorises last (high momentum loss: rare examples).

`BCL` is BCL-I (on SimCLR), `BCLD` is BCL-D (on SDCLR); both take the momentum losses, the strength update and the
boosted views from one mixin, `_MemoryBoost`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_choice, check_number
from keras_ssl_lt.augment.boosted import BoostedViewAugmenter
from keras_ssl_lt.methods.sdclr import SDCLR
from keras_ssl_lt.methods.simclr import SimCLR

__all__ = ["BCL", "BCLD", "boost_strength"]

_VIEWS = {"both": (True, True), "first": (True, False), "second": (False, True), "none": (False, False)}


def boost_strength(momentum_losses, seen=None):
    """BCL's normalised momentum loss: the augmentation strength in [0, 1] of each example.

    Over the examples with `seen` true (all when None): `z = (m - mean(m)) / std(m)` (the unbiased std, as
    `torch.std` in the released code), then `z / max|z| / 2 + 1/2`, so the lowest momentum loss maps to at
    least 0 and the highest to 1 (BCL's `calculate_momentum_weight`, MediaBrain-SJTU/BCL
    `data/memoboosted_cifar100.py`). Examples not seen get 0; when fewer than two are seen or all their
    losses are equal (where the code divides by zero) every seen example gets 1/2.

    Example:

    >>> import numpy as np
    >>> np.asarray(boost_strength(np.array([1.0, 2.0, 3.0], "float32"))).tolist()
    [0.0, 0.5, 1.0]
    """
    m = ops.cast(ops.convert_to_tensor(momentum_losses), "float32")
    mask = ops.ones_like(m) if seen is None else ops.cast(ops.convert_to_tensor(seen), "float32")
    count = ops.sum(mask)
    mean = ops.sum(m * mask) / ops.maximum(count, 1.0)
    var = ops.sum(ops.square(m - mean) * mask) / ops.maximum(count - 1.0, 1.0)
    z = (m - mean) / ops.maximum(ops.sqrt(var), 1e-30)
    peak = ops.max(ops.abs(z) * mask)
    degenerate = (count < 2.0) | (var <= 0.0) | (peak <= 0.0)
    w = z / ops.maximum(peak, 1e-30) / 2.0 + 0.5
    w = ops.where(degenerate, 0.5, ops.clip(w, 0.0, 1.0))
    return w * mask


class _BoostStrengthUpdate(keras.callbacks.Callback):
    """At each epoch's end, the example strengths of the next epoch from the momentum losses (BCL's schedule)."""

    def __init__(self, model):
        super().__init__()
        self._bcl = model

    def on_epoch_end(self, epoch, logs=None):
        self._bcl.update_boost_strength()


class _MemoryBoost:
    """Mixin of BCL's memorisation boost on a contrastive pre-trainer (`BCL` on SimCLR, `BCLD` on SDCLR).

    It keeps three per-example tables (`momentum_losses`, `momentum_seen`, `boost_strength`, non-trainable weights of
    `num_examples` entries), gives a training step's views each example's strength (`make_views` with the batch's
    `index`), records the per-example loss of the method it is mixed into (`"loss"` of the next class's
    `compute_loss_terms`) into the momentum losses after each optimizer step, and updates the strengths at each
    epoch's end (a callback added to those of the next class's `fit_callbacks`). It must come first among the bases:
    `class BCL(_MemoryBoost, SimCLR)`. `_label` names the method in error messages; `boost_variant` is the
    `keras_ssl_lt.augment.bcl_cifar` variant of its views in protocol runs (`keras_ssl_lt.experiments.build`).
    """

    uses_index = True
    extra_metrics = ("strength",)
    _label = "BCL"
    boost_variant = "I"

    def __init__(self, encoder, augmenter=None, beta=0.97, boosted_views="both", num_examples=None, **kwargs):
        if not isinstance(augmenter, BoostedViewAugmenter):
            raise ValueError(
                f"`augmenter` of {self._label} must be a keras_ssl_lt.augment.BoostedViewAugmenter (e.g. "
                f"`keras_ssl_lt.augment.bcl_cifar()`), which takes the examples' strengths; got {type(augmenter).__name__}"
            )
        if num_examples is None:
            raise ValueError(
                f"{self._label} keeps one momentum loss per example: pass `num_examples=` (the size of the source "
                "dataset whose positions the batches' 'index' holds)"
            )
        super().__init__(encoder, augmenter=augmenter, num_examples=num_examples, **kwargs)
        self.beta = check_number(beta, "beta", 0.0, 1.0, high_open=True)
        self.boosted_views = check_choice(boosted_views, "boosted_views", tuple(_VIEWS))
        table = {"shape": (self.num_examples,), "initializer": "zeros", "trainable": False, "dtype": "float32"}
        self.momentum_losses = self.add_weight(name="momentum_losses", **table)
        self.momentum_seen = self.add_weight(name="momentum_seen", **table)
        self.boost_strengths = self.add_weight(name="boost_strength", **table)

    # ------------------------------------------------------------------ views
    def make_views(self, images, training=True, index=None):
        """Two views; with the batch's `index` (training steps) each example's boost strength drives the RandAugment.

        `index=None` (evaluation, `predict`, `per_example_losses`) or `training=False` gives the plain views.
        """
        if not training or index is None:
            return super().make_views(images, training=training)
        strength = ops.take(self.boost_strengths, ops.cast(ops.reshape(index, (-1,)), "int32"), axis=0)
        return [
            self.augmenter(images, training=True, strength=strength if boosted else None)
            for boosted in _VIEWS[self.boosted_views]
        ]

    def _ksl_check_batch(self, data):
        """The base's host-side check (`index` present, inside the tables), then: no example twice in one batch.

        The momentum-loss update is one scatter at the batch's `index`, which would keep only one of a repeated
        example's losses (which one is up to the backend), so such a batch is refused before its step runs.
        """
        super()._ksl_check_batch(data)
        _, _, index = self._unpack(data)
        index = np.asarray(self._ksl_to_numpy(index)).reshape(-1)
        values, counts = np.unique(index, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(
                f"{self._label} records one momentum loss per example and step, so a batch's `index` must not repeat "
                f"an example; got position(s) {values[counts > 1][:5].tolist()} more than once (sample without "
                "replacement within a batch, e.g. `keras_ssl_lt.data.ssl_dataset`)"
            )

    # ------------------------------------------------------------------ loss and state
    def compute_loss_terms(self, views, labels, training=True, index=None):
        terms = super().compute_loss_terms(views, labels, training=training)
        if index is None:
            terms["strength"] = ops.zeros((), "float32")
            return terms
        index = ops.cast(ops.reshape(index, (-1,)), "int32")
        terms["index"] = index
        terms["strength"] = ops.mean(ops.take(self.boost_strengths, index, axis=0))
        return terms

    def after_optimizer_step(self, terms):
        """Records the batch's losses into the momentum losses (a scatter at the batch's `index`)."""
        super().after_optimizer_step(terms)
        loss = ops.stop_gradient(ops.cast(terms["loss"], "float32"))
        (loss, index), _ = self._ksl_all_gather([loss, terms["index"]])
        old = ops.take(self.momentum_losses, index, axis=0)
        seen = ops.take(self.momentum_seen, index, axis=0) > 0
        new = ops.where(seen, self.beta * old + (1.0 - self.beta) * loss, loss)
        positions = ops.reshape(index, (-1, 1))
        self.momentum_losses.assign(ops.scatter_update(self.momentum_losses.value, positions, new))
        self.momentum_seen.assign(ops.scatter_update(self.momentum_seen.value, positions, ops.ones_like(new)))

    def update_boost_strength(self) -> np.ndarray:
        """Sets every example's strength from its momentum loss (`boost_strength`); returns the strengths.

        `fit` calls it at each epoch's end; call it yourself in a custom loop. Safe between steps on every backend.
        """
        self._ksl_sync_state()
        strength = boost_strength(self.momentum_losses.value, self.momentum_seen.value)
        self.boost_strengths.assign(strength)
        return np.asarray(ops.convert_to_numpy(strength))

    def get_momentum_losses(self) -> np.ndarray:
        """The momentum loss of every source example as numpy `(num_examples,)` (0 for examples not seen yet)."""
        self._ksl_sync_state()
        return np.asarray(ops.convert_to_numpy(self.momentum_losses.value))

    def get_boost_strength(self) -> np.ndarray:
        """The current augmentation strength of every source example as numpy `(num_examples,)`."""
        self._ksl_sync_state()
        return np.asarray(ops.convert_to_numpy(self.boost_strengths.value))

    def fit_callbacks(self):
        """The next class's callbacks (SDCLR's mask refresh, a temperature schedule's), then the strength update."""
        return [*super().fit_callbacks(), _BoostStrengthUpdate(self)]

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, boosted_views=self.boosted_views)
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class BCL(_MemoryBoost, SimCLR):
    """Boosted Contrastive Learning: SimCLR with per-example augmentation strength from the momentum loss.

    Each training step records every example's NT-Xent loss (the per-example loss at the current weights,
    before the optimizer step) into its momentum loss, an exponential moving average over the epochs:
    `m_i <- l_i` the first time example `i` is seen, then `m_i <- beta m_i + (1 - beta) l_i` (BCL's released
    code, `train.py`; `beta = 0.97`). At each epoch's end (a callback `fit` adds by itself, see
    `fit_callbacks`) the momentum losses become strengths `s_i` in [0, 1] (`boost_strength`: standardised,
    divided by the largest absolute value, mapped to [0, 1]); during the next epoch the views of example `i`
    get RandAugment with probability `s_i` and magnitude growing with `s_i` on top of SimCLR's augmentation
    (`keras_ssl_lt.augment.BoostedViewAugmenter`). Rare examples stay hard to memorise, keep a high
    momentum loss and so get stronger augmentation. In the first epoch every strength is 0 (plain SimCLR),
    as in the code. The augmentation options (number of ops, magnitude range, BCL-I / BCL-D rule) live on
    the augmenter: `keras_ssl_lt.augment.bcl_cifar("I")` gives BCL-I's, which this class implements (BCL on
    SimCLR; BCL-D, BCL on SDCLR, is `BCLD`).

    Per-example state (non-trainable weights of `num_examples` entries, looked up by each batch's `index`
    like rwSAM's example weights, saved with the model): `momentum_losses`, `momentum_seen` (1 once an
    example's loss was recorded) and `boost_strength`. Evaluation steps, `predict` and `per_example_losses`
    use the plain views (no index, no boost) and record nothing; pre-made `"views"` are taken as they are.
    With SAM / rwSAM the recorded loss is the first pass's (at the current weights) and both passes see the
    same boosted views. Under `tf.distribute` the losses and indices of the whole global batch are gathered,
    so every replica holds the same tables. A training batch whose `index` repeats an example is refused with a
    ValueError on the host before its step runs (the scatter would keep only one of its losses); on a multi-host
    JAX run each process checks the rows it feeds, so a repeat across hosts is not caught.

    Defaults from the released code (`train.py`, README): temperature 0.2 (not SimCLR's 0.5 here), beta 0.97,
    both views boosted. Its CIFAR-100-LT runs: ResNet-18, batch 512, 2000 epochs, SGD lr 0.5 momentum 0.9,
    weight decay 5e-4, cosine schedule with 10 warm-up epochs.

    Args:
        encoder: a built encoder (see `Pretrainer`).
        augmenter: a `keras_ssl_lt.augment.BoostedViewAugmenter`, e.g. `keras_ssl_lt.augment.bcl_cifar()`.
        projection_dim, projection_hidden_dim, global_negatives: as `SimCLR`.
        temperature: NT-Xent temperature (BCL's code: 0.2).
        beta: the momentum of the momentum loss, in [0, 1).
        boosted_views: which views get the boost: `"both"` (the code), `"first"`, `"second"` or `"none"`
            (plain SimCLR that still tracks the momentum losses).
        num_examples: size of the source dataset (the batches' `index` range); required.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> encoder = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
    >>> augmenter = ksl.augment.boosted.bcl_cifar(crop_size=8, seed=0, crop="pad", jitter=None, ops=["invert", "rotate"])
    >>> model = BCL(encoder, augmenter=augmenter, projection_dim=8, projection_hidden_dim=16, num_examples=8,
    ...             rankme=False)  # a quick example: a plain crop, no colour jitter, two ops, no RankMe
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1))
    >>> batch = {"images": np.random.randint(0, 256, (8, 8, 8, 3), dtype="uint8"), "index": np.arange(8)}
    >>> history = model.fit(batch, batch_size=4, epochs=1, verbose=0)
    >>> bool(model.get_momentum_losses().min() > 0), sorted(set(model.get_boost_strength().round(6)) - {0.0}) != []
    (True, True)
    """

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: BoostedViewAugmenter | None = None,
        projection_dim: int = 128,
        projection_hidden_dim: int = 2048,
        temperature: float = 0.2,
        global_negatives: bool = True,
        beta: float = 0.97,
        boosted_views: str = "both",
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
            beta=beta,
            boosted_views=boosted_views,
            num_examples=num_examples,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class BCLD(_MemoryBoost, SDCLR):
    """BCL-D: Boosted Contrastive Learning on SDCLR (a pruned self-competitor), BCL's stronger variant.

    SDCLR (see `SDCLR`: view 1 through the dense encoder and projector, view 2 through their pruned twin with its own
    BatchNorm, NT-Xent between the two branches, masks recomputed at each epoch start) with BCL's memorisation boost
    (see `BCL`): each example's SDCLR loss feeds its momentum loss `m_i <- beta m_i + (1 - beta) l_i`, the momentum
    losses become strengths in [0, 1] at each epoch's end, and the strengths drive a per-example RandAugment on the
    views during the next epoch. The state, the hooks and their checks are `BCL`'s (one mixin); only the loss is
    SDCLR's.

    What the released code does for BCL-D (MediaBrain-SJTU/BCL, read for this class): the README's BCL-D command is
    `train_sdclr.py BCL_D --bcl --rand_k 2 --lr 0.5 --epochs 2000 --temperature 0.2 --weight_decay 1e-4`.
    `train_sdclr.py`'s `train_prune` (lines 157-177) embeds view 2 with the pruned network under `no_grad` and
    view 1 with the dense one, takes `criterion(features_1, features_=features_2_noGrad)` with
    `NT_Xent_Loss(average=False)`, whose per-example value is the mean of the two anchors' NT-Xent
    (`losses/nt_xent.py` lines 43-49: `loss.view(2, batch_size).mean(0)`), and writes that dense-vs-pruned loss
    into the momentum loss with `momentum_loss_beta = 0.97` (lines 39, 170-177); the second backward pass (pruned
    branch with gradient) only completes the gradient and records nothing. That is this class's per-example loss:
    SDCLR's `contrast(z_dense, z_pruned)`, the two directions averaged, at the weights before the step. The
    strengths are updated after each epoch from these momentum losses (`train_sdclr.py` lines 114-116,
    `calculate_momentum_weight`), as for BCL-I. Views (`data/memoboosted_cifar100.py` lines 48-59, `rand_k=2`): the
    SimCLR transforms, then `RandAugment_prob` with 2 operations, each applied with probability `s_i`, at magnitude
    `5 + 25 s_i u`, `u` uniform; both views (dense and pruned branch) are boosted. That is
    `keras_ssl_lt.augment.bcl_cifar("D")`, the augmenter to pass here (protocol runs use it for `bcl_d`).
    Pruning as SDCLR's (`prune_percent` 0.9, magnitude pruning at each epoch start).

    Deviations, besides BCL's and SDCLR's own (see their docstrings): the code draws `u` once per image and uses it
    for both views; here each view draws its own `u` (`StrengthRandAugment` draws per call).

    Defaults from the released code: temperature 0.2, `prune_ratio=0.9`, beta 0.97, both views boosted; its
    CIFAR-100-LT run: ResNet-18, batch 512, 2000 epochs, SGD lr 0.5 momentum 0.9, weight decay 1e-4 (not BCL-I's
    5e-4), cosine schedule with 10 warm-up epochs; linear probe 58.7 / 52.6 / 48.7 (full / 100 / 50 shots) against
    SDCLR's 55.0 / 49.7 / 45.6 (README, split 1).

    Args:
        encoder: a built encoder (see `Pretrainer`).
        augmenter: a `keras_ssl_lt.augment.BoostedViewAugmenter`, e.g. `keras_ssl_lt.augment.bcl_cifar("D")`.
        projection_dim, projection_hidden_dim, temperature, prune_ratio, prune_layers, prune_scope, dual_bn,
            global_negatives: as `SDCLR`.
        beta, boosted_views: as `BCL` (`"first"` boosts the dense branch's view, `"second"` the pruned one's).
        num_examples: size of the source dataset (the batches' `index` range); required.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> encoder = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
    >>> augmenter = ksl.augment.bcl_cifar("D", crop_size=8, seed=0, crop="pad", jitter=None, ops=["invert", "rotate"])
    >>> model = ksl.BCLD(encoder, augmenter=augmenter, projection_dim=8, projection_hidden_dim=16, num_examples=8,
    ...                  rankme=False)  # a quick example: a plain crop, no colour jitter, two ops, no RankMe
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1))
    >>> batch = {"images": np.random.randint(0, 256, (8, 8, 8, 3), dtype="uint8"), "index": np.arange(8)}
    >>> history = model.fit(batch, batch_size=4, epochs=1, verbose=0)
    >>> bool(model.get_momentum_losses().min() > 0), int(keras.ops.sum(model.pruned_encoder.masks[0]))  # 10 % of 108 kept
    (True, 10)
    """

    _label = "BCL-D"
    boost_variant = "D"

    def __init__(
        self,
        encoder: keras.Model,
        augmenter: BoostedViewAugmenter | None = None,
        projection_dim: int = 128,
        projection_hidden_dim: int = 2048,
        temperature: float | dict | Any = 0.2,
        prune_ratio: float = 0.9,
        prune_layers: Sequence[str] | None = None,
        prune_scope: str = "global",
        dual_bn: bool = True,
        global_negatives: bool = True,
        beta: float = 0.97,
        boosted_views: str = "both",
        num_examples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            encoder,
            augmenter=augmenter,
            projection_dim=projection_dim,
            projection_hidden_dim=projection_hidden_dim,
            temperature=temperature,
            prune_ratio=prune_ratio,
            prune_layers=prune_layers,
            prune_scope=prune_scope,
            dual_bn=dual_bn,
            global_negatives=global_negatives,
            beta=beta,
            boosted_views=boosted_views,
            num_examples=num_examples,
            **kwargs,
        )
