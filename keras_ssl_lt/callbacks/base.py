"""`EvaluationCallback`: the schedule, feature extraction and logging shared by the evaluation callbacks."""

import math

import keras

from keras_ssl_lt.evaluation.data import as_arrays, resolve_num_classes
from keras_ssl_lt.evaluation.features import extract_features

__all__ = ["EvaluationCallback"]


class EvaluationCallback(keras.callbacks.Callback):
    """Base of the evaluation callbacks: schedule, feature extraction and logging.

    Evaluates at the end of every `every_n_epochs`-th epoch and of the last epoch; on other
    epochs the same log keys are written as NaN so that `History`, `CSVLogger` and `TensorBoard`
    see one value per epoch for each key. Results are also kept in `self.results`
    (a list of `(epoch, {key: value})`). Subclasses implement `_evaluate(train_features,
    test_features) -> {suffix: value}` and `_suffixes()`.

    The data are read and their labels checked when the callback is created: the evaluation label
    rule (`keras_ssl_lt.evaluation.data`), labels below `num_classes` when it is given, and, when it
    is not, no test label absent from the training labels.

    Example (a subclass logging the mean feature):

    >>> import numpy as np, keras
    >>> class MeanFeature(EvaluationCallback):
    ...     def _suffixes(self):
    ...         return ["mean"]
    ...     def _evaluate(self, train_features, test_features):
    ...         return {"mean": test_features.mean()}
    >>> cb = MeanFeature((np.ones((4, 2, 2, 1)), [0, 1, 0, 1]), (np.ones((2, 2, 2, 1)), [0, 1]), prefix="m")
    >>> cb.set_model(keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten()]))
    >>> cb.evaluate_now()
    {'m_mean': 1.0}
    """

    def __init__(
        self, train_data, test_data, every_n_epochs=1, prefix="eval", feature_batch_size=512, num_classes=None
    ):
        super().__init__()
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"`every_n_epochs` must be a positive integer; got {every_n_epochs!r}")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"`prefix` must be a non-empty string; got {prefix!r}")
        if not isinstance(feature_batch_size, int) or feature_batch_size < 1:
            raise ValueError(f"`feature_batch_size` must be a positive integer; got {feature_batch_size!r}")
        self.x_train, self.y_train = as_arrays(train_data, "train_data")
        self.x_test, self.y_test = as_arrays(test_data, "test_data")
        resolve_num_classes(num_classes, self.y_train, self.y_test)
        self.num_classes = num_classes
        self.every_n_epochs = every_n_epochs
        self.prefix = prefix
        self.feature_batch_size = feature_batch_size
        self.results = []

    def _should_run(self, epoch):
        last = (self.params or {}).get("epochs")
        return (epoch + 1) % self.every_n_epochs == 0 or (last is not None and epoch + 1 == last)

    def evaluate_now(self):
        """Run the evaluation on `self.model` now and return `{log key: value}`."""
        if self.model is None:
            raise ValueError("no model is attached: call `set_model(model)` first or use it in `fit`")
        ftr = extract_features(self.model, self.x_train, batch_size=self.feature_batch_size)
        fte = extract_features(self.model, self.x_test, batch_size=self.feature_batch_size)
        res = self._evaluate(ftr, fte)
        return {f"{self.prefix}_{k}": float(v) for k, v in res.items()}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            logs = {}
        if self._should_run(epoch):
            res = self.evaluate_now()
            self.results.append((epoch, res))
        else:
            res = {f"{self.prefix}_{k}": math.nan for k in self._suffixes()}
        logs.update(res)

    def _suffixes(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _evaluate(self, train_features, test_features):  # pragma: no cover - abstract
        raise NotImplementedError
