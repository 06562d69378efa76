"""The evaluation callbacks: Keras callbacks that evaluate the frozen encoder during pre-training.

Each writes its results into the epoch `logs`; place them before `CSVLogger` / `TensorBoard` in the
callbacks list so those see the new keys. `keras_ssl_lt.callbacks.X` is their one public path.

```
base.py          EvaluationCallback (schedule, feature extraction, logging)
linear_probe.py  LinearProbe (linear-probe accuracy, per class group)
knn.py           KNNMonitor (weighted cosine kNN accuracy)
transfer.py      TransferProbe (probe and few-shot probe on another dataset)
```

They call the functions of `keras_ssl_lt.evaluation` (`probe_features`, `knn_features`,
`few_shot_features`) on the features of `model.encoder`. rwSAM's weight refresher is
`keras_ssl_lt.rwsam.KDEReweighting`.

Example:

>>> import numpy as np, keras
>>> from keras_ssl_lt import callbacks
>>> x = np.random.default_rng(0).normal(size=(20, 4, 4, 3)).astype("float32"); y = np.arange(20) % 2
>>> mon = callbacks.KNNMonitor((x, y), (x, y), k=5, every_n_epochs=10)
>>> mon.set_model(keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten()]))
>>> mon.evaluate_now()["knn_acc"]
1.0
"""

from keras_ssl_lt.callbacks.base import EvaluationCallback
from keras_ssl_lt.callbacks.knn import KNNMonitor
from keras_ssl_lt.callbacks.linear_probe import LinearProbe
from keras_ssl_lt.callbacks.transfer import TransferProbe

__all__ = ["EvaluationCallback", "KNNMonitor", "LinearProbe", "TransferProbe"]
