"""Evaluation of representations: one file per concept, all computed with `keras.ops` on the device.

```
data.py          as_arrays, and the one input rule: check_labels, check_features, resolve_num_classes
features.py      feature_model, extract_features (frozen encoder, inference mode)
linear_probe.py  LinearClassifier, fit_logistic_regression, fit_linear_sgd, probe_features, linear_probe
knn.py           knn_predict, knn_features, knn
transfer.py      few_shot_features, fine_tune, GradientScale
longtail.py      k_shot_probe, k_shot_indices, lt_probe (TS-style / SDCLR-style), group_balancedness
metrics.py       topk_accuracy / predict_classes (the tie rule), gap, relative_gap, per-class and
                 per-group accuracy, generalization_gap
```

The Keras callbacks built on these functions (`LinearProbe`, `KNNMonitor`, `TransferProbe`) live in
`keras_ssl_lt.callbacks`.

Everything below is importable from `keras_ssl_lt.evaluation` directly. The functions `knn` and
`linear_probe` share their names with the files that define them: `keras_ssl_lt.evaluation.knn` is the
function; import the file's other names from it (`from keras_ssl_lt.evaluation.knn import knn_predict`).

Example:

>>> import numpy as np
>>> from keras_ssl_lt import evaluation
>>> x = np.array([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0], [0.1, 0.9]]); y = np.array([0, 0, 1, 1])
>>> evaluation.knn_features(x, y, x, y, k=2)["acc"], evaluation.probe_features(x, y, x, y)["acc"]
(1.0, 1.0)
"""

from keras_ssl_lt.evaluation import metrics
from keras_ssl_lt.evaluation.data import (
    as_arrays,
    check_features,
    check_features_labels,
    check_labels,
    resolve_num_classes,
)
from keras_ssl_lt.evaluation.features import extract_features, feature_model
from keras_ssl_lt.evaluation.knn import knn, knn_features, knn_predict
from keras_ssl_lt.evaluation.linear_probe import (
    PROTOCOLS,
    LinearClassifier,
    fit_linear_sgd,
    fit_logistic_regression,
    fit_probe,
    linear_probe,
    probe_features,
)
from keras_ssl_lt.evaluation.longtail import group_balancedness, k_shot_indices, k_shot_probe, lt_probe
from keras_ssl_lt.evaluation.metrics import (
    accuracy_summary,
    check_class_groups,
    gap,
    generalization_gap,
    generalization_gap_from_model,
    per_class_accuracy,
    per_group_accuracy,
    predict_classes,
    relative_gap,
    topk_accuracy,
)
from keras_ssl_lt.evaluation.transfer import GradientScale, few_shot_features, fine_tune

__all__ = [
    "PROTOCOLS",
    "GradientScale",
    "LinearClassifier",
    "accuracy_summary",
    "as_arrays",
    "check_class_groups",
    "check_features",
    "check_features_labels",
    "check_labels",
    "extract_features",
    "feature_model",
    "few_shot_features",
    "fine_tune",
    "fit_linear_sgd",
    "fit_logistic_regression",
    "fit_probe",
    "gap",
    "generalization_gap",
    "generalization_gap_from_model",
    "group_balancedness",
    "k_shot_indices",
    "k_shot_probe",
    "knn",
    "knn_features",
    "knn_predict",
    "linear_probe",
    "lt_probe",
    "metrics",
    "per_class_accuracy",
    "per_group_accuracy",
    "predict_classes",
    "probe_features",
    "relative_gap",
    "resolve_num_classes",
    "topk_accuracy",
]
