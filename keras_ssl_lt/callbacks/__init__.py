"""Keras callbacks that evaluate the encoder during pre-training and write results into `logs`.

Place them before `CSVLogger` / `TensorBoard` in the callbacks list so those see the new keys.
"""

from keras_ssl_lt.callbacks.knn import KNNMonitor
from keras_ssl_lt.callbacks.linear_probe import EvaluationCallback, LinearProbe
from keras_ssl_lt.callbacks.reweight import KDEReweighting
from keras_ssl_lt.callbacks.transfer import TransferProbe

__all__ = ["EvaluationCallback", "KDEReweighting", "KNNMonitor", "LinearProbe", "TransferProbe"]
