"""A callback that refreshes rwSAM example weights from kernel densities of the current features."""

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_bool, check_choice, check_positive_int
from keras_ssl_lt.evaluation.features import extract_features
from keras_ssl_lt.rwsam.weights import check_kde_options, kde_weights

__all__ = ["KDEReweighting"]


class KDEReweighting(keras.callbacks.Callback):
    """Re-compute inverse-KDE example weights (`kde_weights`) from the encoder during `fit`.

    A refresh extracts the encoder features of `images` (`extract_features`: the model's
    augmenter in inference mode, then the encoder, BatchNorm in inference mode), computes
    `kde_weights` on them and writes the result into the pre-trainer's example-weight table with
    `model.set_example_weights(weights, indices)`. Entries of the table outside `indices` are
    left unchanged.

    When (epochs counted from 0 as Keras does, including `initial_epoch`):

    - at `on_epoch_begin` of the first epoch of each `fit` call, if `at_start=True`, so the
      first epoch already trains with KDE weights;
    - at `on_epoch_end` of every epoch `e` with `(e + 1) % every_n_epochs == 0`, i.e. after
      epochs k-1, 2k-1, 3k-1, ... so epochs k, 2k, ... start with fresh weights. (The refresh
      after the last epoch of `fit` also happens; it only affects a later `fit` call.)

    At every epoch end the callback adds to `logs` (so they appear in `History`):
    `kde_weight_min`, `kde_weight_max` (of the table entries at `indices`, read after any
    refresh) and `kde_bandwidth` (the bandwidth of the latest refresh, NaN before the first).

    The model must provide `example_weights` (a 1-D keras Variable over the source data set)
    and `set_example_weights(weights, indices=None)`, as the package's pre-trainers do.

    Args:
        images: uint8 array (N, H, W, C): the training subset's images.
        indices: int array (N,): their positions in the source data set (the `index` carried by
            the training batches), distinct.
        every_n_epochs: refresh period k >= 1 (see above).
        at_start: also refresh before the first epoch.
        bandwidth, power, clip, normalize, exclude_self, chunk_size: passed to `kde_weights`.
        batch_size: images per forward pass for the feature extraction.
        verbose: 1 prints a line per refresh.

    Attributes:
        refreshes: list of `(epoch, "begin" | "end")` for every refresh done so far.
        last_weights: float32 array (N,) of the latest weights set, or None.
        last_bandwidth: the bandwidth of the latest refresh, or None.

    Example:

    >>> import numpy as np
    >>> images = np.zeros((8, 4, 4, 3), "uint8")
    >>> cb = KDEReweighting(images, np.arange(8), every_n_epochs=5, bandwidth=0.5)
    >>> cb.every_n_epochs
    5
    """

    def __init__(
        self,
        images,
        indices,
        every_n_epochs=1,
        at_start=True,
        bandwidth="median",
        power=1.0,
        clip=(0.1, 10.0),
        normalize=True,
        exclude_self=True,
        batch_size=512,
        chunk_size=1024,
        verbose=0,
    ):
        super().__init__()
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[0] < 2:
            raise ValueError(f"`images` must be an array (N, H, W, C) with N >= 2; got shape {images.shape}")
        indices = np.asarray(indices)
        if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"`indices` must be a 1-D integer array; got shape {indices.shape}, dtype {indices.dtype}")
        if len(indices) != len(images):
            raise ValueError(f"`indices` must have one entry per image: {len(indices)} != {len(images)}")
        if indices.min() < 0 or len(np.unique(indices)) != len(indices):
            raise ValueError("`indices` must be distinct non-negative positions in the source")
        self.images = images
        self.indices = indices.astype(np.int64)
        self.every_n_epochs = check_positive_int(every_n_epochs, "every_n_epochs")
        self.at_start = check_bool(at_start, "at_start")
        self.bandwidth, self.power, self.clip, self.chunk_size = check_kde_options(bandwidth, power, clip, chunk_size)
        self.normalize = check_bool(normalize, "normalize")
        self.exclude_self = check_bool(exclude_self, "exclude_self")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.verbose = check_choice(verbose, "verbose", (0, 1))
        self.refreshes = []
        self.last_weights = None
        self.last_bandwidth = None
        self._start_pending = False

    # ------------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        model = self.model
        table = getattr(model, "example_weights", None)
        if table is None or not callable(getattr(model, "set_example_weights", None)):
            raise ValueError(
                "KDEReweighting needs a model with an `example_weights` variable and a "
                f"`set_example_weights(weights, indices)` method; got {type(model).__name__}"
            )
        if len(table.shape) != 1:
            raise ValueError(f"`model.example_weights` must be 1-D; got shape {tuple(table.shape)}")
        if self.indices.max() >= table.shape[0]:
            raise ValueError(
                f"`indices` must be < the size of model.example_weights ({table.shape[0]}); "
                f"got max {int(self.indices.max())}"
            )
        self._start_pending = self.at_start

    def on_epoch_begin(self, epoch, logs=None):
        if self._start_pending:
            self._start_pending = False
            self.refresh(epoch, "begin")

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.refresh(epoch, "end")
        if logs is not None:
            current = ops.convert_to_numpy(self.model.example_weights)[self.indices]
            logs["kde_weight_min"] = float(np.min(current))
            logs["kde_weight_max"] = float(np.max(current))
            logs["kde_bandwidth"] = float("nan") if self.last_bandwidth is None else float(self.last_bandwidth)

    # ------------------------------------------------------------------------------------------
    def compute_weights(self):
        """Features of `images` under the current model, and their KDE weights and bandwidth."""
        feats = extract_features(self.model, self.images, batch_size=self.batch_size)
        return kde_weights(
            feats,
            bandwidth=self.bandwidth,
            power=self.power,
            clip=self.clip,
            normalize=self.normalize,
            exclude_self=self.exclude_self,
            chunk_size=self.chunk_size,
            return_bandwidth=True,
        )

    def refresh(self, epoch, when):
        """Compute the weights now and write them into the model's table at `indices`."""
        w, h = self.compute_weights()
        self.model.set_example_weights(w, self.indices)
        self.last_weights = w
        self.last_bandwidth = h
        self.refreshes.append((int(epoch), when))
        if self.verbose:
            print(
                f"KDEReweighting (epoch {epoch + 1}, {when}): bandwidth {h:.4g}, weights "
                f"min {w.min():.4g} max {w.max():.4g} mean {w.mean():.4g}"
            )
