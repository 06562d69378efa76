"""`KNNMonitor`: weighted cosine kNN accuracy of the frozen encoder, written into the epoch `logs`."""

from keras_ssl_lt._checks import check_choice, check_number
from keras_ssl_lt.callbacks.base import EvaluationCallback
from keras_ssl_lt.evaluation.knn import COMPUTES, WEIGHTINGS, knn_features
from keras_ssl_lt.evaluation.metrics import check_class_groups

__all__ = ["KNNMonitor"]


class KNNMonitor(EvaluationCallback):
    """kNN accuracy of the frozen encoder's features, every `every_n_epochs` epochs.

    Cosine similarity between L2-normalised features; each test example takes the `k` most similar
    training examples, which vote for their labels with weight `exp(sim / temperature)`
    (`weighting="exp"`, the InstDisc / SimCLR monitor convention; `"similarity"` or `"uniform"`
    also accepted); the class with the largest summed vote wins (ties: the lower training index is
    the nearer neighbour, the lower class id wins a vote tie, on every backend; NaN or inf features
    raise ValueError). Computed in test chunks whose (chunk, N_train) similarity block fits
    `memory_budget_mb`: with `keras.ops` on the model's device, or in numpy on the host where the backend
    computes on the CPU (`compute="auto"`; `"device"` / `"host"` force one path; see `knn_predict`).

    Logs (default `prefix="knn"`): `knn_acc`, `knn_top5`, `knn_acc_<group>` per class group.
    Place before `CSVLogger` / `TensorBoard` in the callbacks list.

    Example:

    >>> import numpy as np, keras
    >>> x = np.random.default_rng(0).normal(size=(20, 4, 4, 3)).astype("float32")
    >>> y = np.arange(20) % 2
    >>> mon = KNNMonitor((x, y), (x, y), k=5)
    >>> mon.set_model(keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten()]))
    >>> sorted(mon.evaluate_now())
    ['knn_acc', 'knn_top5']
    """

    def __init__(
        self,
        train_data,
        test_data,
        k=200,
        temperature=0.1,
        weighting="exp",
        every_n_epochs=1,
        num_classes=None,
        class_groups=None,
        feature_batch_size=512,
        chunk_size=None,
        memory_budget_mb=256,
        prefix="knn",
        compute="auto",
    ):
        super().__init__(train_data, test_data, every_n_epochs, prefix, feature_batch_size, num_classes)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(self.y_train):
            raise ValueError(
                f"`k` must be an integer in [1, number of training examples = {len(self.y_train)}]; got {k!r}"
            )
        self.weighting = check_choice(weighting, "weighting", WEIGHTINGS)
        self.temperature = check_number(temperature, "temperature", low=0.0, low_open=True)
        self.k = k
        self.class_groups = check_class_groups(class_groups, num_classes)
        self.chunk_size = chunk_size
        self.memory_budget_mb = memory_budget_mb
        self.compute = check_choice(compute, "compute", COMPUTES)

    def _suffixes(self):
        return ["acc", "top5"] + [f"acc_{g}" for g in (self.class_groups or {})]

    def _evaluate(self, train_features, test_features):
        return knn_features(
            train_features,
            self.y_train,
            test_features,
            self.y_test,
            num_classes=self.num_classes,
            class_groups=self.class_groups,
            k=self.k,
            temperature=self.temperature,
            weighting=self.weighting,
            chunk_size=self.chunk_size,
            memory_budget_mb=self.memory_budget_mb,
            compute=self.compute,
        )
