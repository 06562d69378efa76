"""Keras callbacks that evaluate the frozen encoder during pre-training and write results into `logs`.

Place them before `CSVLogger` / `TensorBoard` in the callbacks list so those see the new keys.

* `base.py`: `EvaluationCallback` (schedule, feature extraction, logging).
* `linear_probe.py`: `LinearProbe`. `knn.py`: `KNNMonitor`. `transfer.py`: `TransferProbe`.
"""

from keras_ssl_lt.evaluation.callbacks.base import EvaluationCallback
from keras_ssl_lt.evaluation.callbacks.knn import KNNMonitor
from keras_ssl_lt.evaluation.callbacks.linear_probe import LinearProbe
from keras_ssl_lt.evaluation.callbacks.transfer import TransferProbe

__all__ = ["EvaluationCallback", "KNNMonitor", "LinearProbe", "TransferProbe"]
