"""The package's Keras callbacks in one namespace (re-exports).

The evaluation callbacks live in `keras_ssl_lt.evaluation.callbacks` (`EvaluationCallback`,
`LinearProbe`, `KNNMonitor`, `TransferProbe`), the rwSAM weight refresher in `keras_ssl_lt.rwsam`
(`KDEReweighting`). Place the evaluation callbacks before `CSVLogger` / `TensorBoard` in the
callbacks list so those see the new keys.

Example:

>>> from keras_ssl_lt import callbacks, evaluation
>>> callbacks.KNNMonitor is evaluation.KNNMonitor
True
"""

from keras_ssl_lt.evaluation.callbacks import (
    EvaluationCallback,
    KNNMonitor,
    LinearProbe,
    TransferProbe,
)
from keras_ssl_lt.rwsam import KDEReweighting

__all__ = ["EvaluationCallback", "KDEReweighting", "KNNMonitor", "LinearProbe", "TransferProbe"]
