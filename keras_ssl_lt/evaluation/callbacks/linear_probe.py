"""`LinearProbe`: linear-probe accuracy of the frozen encoder, written into the epoch `logs`."""

import math

import keras
import numpy as np

from keras_ssl_lt import evaluate
from keras_ssl_lt.features import extract_features
from keras_ssl_lt.metrics import check_class_groups

__all__ = ["EvaluationCallback", "LinearProbe"]


class EvaluationCallback(keras.callbacks.Callback):
    """Base of the evaluation callbacks: schedule, feature extraction and logging.

    Evaluates at the end of every `every_n_epochs`-th epoch and of the last epoch; on other
    epochs the same log keys are written as NaN so that `History`, `CSVLogger` and `TensorBoard`
    see one value per epoch for each key. Results are also kept in `self.results`
    (a list of `(epoch, {key: value})`). Subclasses implement `_evaluate(train_features,
    test_features) -> {suffix: value}` and `_suffixes()`.
    """

    def __init__(
        self, train_data, test_data, every_n_epochs=1, prefix="eval", feature_batch_size=512
    ):
        super().__init__()
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"`every_n_epochs` must be a positive integer; got {every_n_epochs!r}")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"`prefix` must be a non-empty string; got {prefix!r}")
        if not isinstance(feature_batch_size, int) or feature_batch_size < 1:
            raise ValueError(
                f"`feature_batch_size` must be a positive integer; got {feature_batch_size!r}"
            )
        self.x_train, self.y_train = evaluate.as_arrays(train_data, "train_data")
        self.x_test, self.y_test = evaluate.as_arrays(test_data, "test_data")
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


class LinearProbe(EvaluationCallback):
    """Linear-probe accuracy of the frozen encoder, every `every_n_epochs` epochs.

    Features come from `model.encoder` (after `model.augmenter` in inference mode, if any; or
    from `model` itself when it is a plain encoder) with BatchNorm in inference mode; neither
    weights nor BatchNorm statistics change. A multinomial logistic regression is then trained on
    device (`protocol="convex"`: standardised features, L2 penalty `l2` on the mean loss, the
    scikit-learn objective with `C = 1 / (l2 * N)`; `protocol="paper"`: the paper's SGD protocol,
    lr 30, momentum 0.9, 100 epochs, x0.1 at 60 and 80, batch 256, no weight decay, raw features).

    Logs (with the default `prefix="probe"`): `probe_acc`, `probe_top5`, and `probe_acc_<group>`
    for each group of `class_groups` (e.g. `Subset.groups`: many / medium / few, from the
    pre-training subset's class counts). Place this callback before `CSVLogger` / `TensorBoard`
    in the callbacks list so that they see these keys.

    Args:
        train_data, test_data: `(images, labels)` arrays or an iterable of `{"images", "labels"}`
            batches (read once into memory).
        every_n_epochs: evaluate after every n-th epoch (and the last); NaN is logged otherwise.
        num_classes: number of classes (default: inferred from the labels).
        class_groups: None or `{group name: class ids}`.
        protocol, l2: see above; `solver_kwargs` go to the solver
            (`probes.fit_logistic_regression` or `probes.fit_linear_sgd`).
        feature_batch_size: images per forward pass for feature extraction (the paper
            protocol's own `batch_size=256` is a solver keyword).

    Example:

    >>> import numpy as np, keras
    >>> x = np.random.default_rng(0).integers(0, 255, (40, 8, 8, 3)).astype("uint8")
    >>> y = np.arange(40) % 4
    >>> enc = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
    ...                         keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
    >>> probe = LinearProbe((x, y), (x, y), class_groups={"many": [0, 1], "few": [2, 3]})
    >>> probe.set_model(enc)
    >>> sorted(probe.evaluate_now())
    ['probe_acc', 'probe_acc_few', 'probe_acc_many', 'probe_top5']
    """

    def __init__(
        self,
        train_data,
        test_data,
        every_n_epochs=1,
        num_classes=None,
        class_groups=None,
        protocol="convex",
        l2=1e-4,
        feature_batch_size=512,
        prefix="probe",
        **solver_kwargs,
    ):
        super().__init__(train_data, test_data, every_n_epochs, prefix, feature_batch_size)
        if protocol not in evaluate.PROTOCOLS:
            raise ValueError(f"`protocol` must be one of {evaluate.PROTOCOLS}; got {protocol!r}")
        self.num_classes = num_classes
        self.class_groups = check_class_groups(class_groups, num_classes)
        self.protocol = protocol
        self.l2 = l2
        self.solver_kwargs = solver_kwargs
        self.classifier = None

    def _suffixes(self):
        return ["acc", "top5"] + [f"acc_{g}" for g in (self.class_groups or {})]

    def _evaluate(self, train_features, test_features):
        res, self.classifier = evaluate.probe_features(
            train_features,
            self.y_train,
            test_features,
            self.y_test,
            num_classes=self.num_classes,
            class_groups=self.class_groups,
            protocol=self.protocol,
            l2=self.l2,
            return_classifier=True,
            **self.solver_kwargs,
        )
        return res
