"""`TransferProbe`: linear / few-shot probe on an out-of-domain dataset, written into `logs`."""

from keras_ssl_lt._checks import check_choice
from keras_ssl_lt.callbacks.base import EvaluationCallback
from keras_ssl_lt.evaluation.linear_probe import PROTOCOLS, probe_features
from keras_ssl_lt.evaluation.transfer import few_shot_features

__all__ = ["TransferProbe"]


class TransferProbe(EvaluationCallback):
    """Linear probe of the frozen encoder on another dataset (e.g. CIFAR-10 -> STL-10).

    Full probe on all of `train_data` (`<prefix>_acc`, `<prefix>_top5`) and, for each `k` in
    `few_shot` (an int or a list), a few-shot probe on `k` labelled examples per class drawn
    `num_draws` times (`<prefix>_<k>shot_acc` mean and `<prefix>_<k>shot_acc_std` std over draws).
    `few_shot_only=True` skips the full probe. The probe is `protocol="convex"` (L2 `l2`) or
    `"paper"` as in `LinearProbe`. For full-network transfer use `keras_ssl_lt.evaluation.fine_tune`.
    Place before `CSVLogger` / `TensorBoard` in the callbacks list.

    Example:

    >>> import numpy as np, keras
    >>> rng = np.random.default_rng(0); y = np.arange(30) % 3
    >>> x = (rng.normal(size=(30, 2, 2, 3)) + y[:, None, None, None]).astype("float32")
    >>> tp = TransferProbe((x, y), (x, y), few_shot=2, num_draws=2, prefix="stl10")
    >>> tp.set_model(keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Flatten()]))
    >>> sorted(tp.evaluate_now())
    ['stl10_2shot_acc', 'stl10_2shot_acc_std', 'stl10_acc', 'stl10_top5']
    """

    def __init__(
        self,
        train_data,
        test_data,
        every_n_epochs=1,
        num_classes=None,
        few_shot=None,
        num_draws=5,
        few_shot_only=False,
        seed=0,
        protocol="convex",
        l2=1e-4,
        feature_batch_size=512,
        prefix="transfer",
        **solver_kwargs,
    ):
        super().__init__(train_data, test_data, every_n_epochs, prefix, feature_batch_size, num_classes)
        check_choice(protocol, "protocol", PROTOCOLS)
        shots = [] if few_shot is None else ([few_shot] if isinstance(few_shot, int) else list(few_shot))
        for k in shots:
            if not isinstance(k, int) or k < 1:
                raise ValueError(f"`few_shot` must be None, a positive int or a list of them; got {few_shot!r}")
        if few_shot_only and not shots:
            raise ValueError("`few_shot_only=True` needs `few_shot` (shots per class)")
        if not isinstance(num_draws, int) or num_draws < 1:
            raise ValueError(f"`num_draws` must be a positive integer; got {num_draws!r}")
        self.few_shot = shots
        self.num_draws = num_draws
        self.few_shot_only = few_shot_only
        self.seed = seed
        self.protocol = protocol
        self.l2 = l2
        self.solver_kwargs = solver_kwargs

    def _suffixes(self):
        out = [] if self.few_shot_only else ["acc", "top5"]
        for k in self.few_shot:
            out += [f"{k}shot_acc", f"{k}shot_acc_std"]
        return out

    def _evaluate(self, train_features, test_features):
        common = {"num_classes": self.num_classes, "protocol": self.protocol, "l2": self.l2}
        out = {}
        if not self.few_shot_only:
            out.update(
                probe_features(
                    train_features,
                    self.y_train,
                    test_features,
                    self.y_test,
                    **common,
                    **self.solver_kwargs,
                )
            )
        for k in self.few_shot:
            r = few_shot_features(
                train_features,
                self.y_train,
                test_features,
                self.y_test,
                shots=k,
                num_draws=self.num_draws,
                seed=self.seed,
                **common,
                **self.solver_kwargs,
            )
            out[f"{k}shot_acc"] = r["acc"]
            out[f"{k}shot_acc_std"] = r["acc_std"]
        return out
