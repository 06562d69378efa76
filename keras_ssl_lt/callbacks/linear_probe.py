"""`LinearProbe`: linear-probe accuracy of the frozen encoder, written into the epoch `logs`."""

from keras_ssl_lt._checks import check_choice
from keras_ssl_lt.callbacks.base import EvaluationCallback
from keras_ssl_lt.evaluation.linear_probe import PROTOCOLS, probe_features
from keras_ssl_lt.evaluation.metrics import check_class_groups

__all__ = ["LinearProbe"]


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
            (`fit_logistic_regression` or `fit_linear_sgd` of `keras_ssl_lt.evaluation`).
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
        super().__init__(train_data, test_data, every_n_epochs, prefix, feature_batch_size, num_classes)
        check_choice(protocol, "protocol", PROTOCOLS)
        self.class_groups = check_class_groups(class_groups, num_classes)
        self.protocol = protocol
        self.l2 = l2
        self.solver_kwargs = solver_kwargs
        self.classifier = None

    def _suffixes(self):
        return ["acc", "top5"] + [f"acc_{g}" for g in (self.class_groups or {})]

    def _evaluate(self, train_features, test_features):
        res, self.classifier = probe_features(
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
