"""keras-ssl-lt: self-supervised learning under dataset imbalance, for Keras 3.

Long-tailed data builders (`keras_ssl_lt.data`), on-device augmentation (`augment`), backbones,
SSL and supervised pre-trainers used through plain `model.fit` on TensorFlow, JAX and PyTorch
(`SimSiam`, `SimCLR`, `MoCoV2`, `BYOL`, `Supervised`), the sharpness-aware regularisers SAM, ASAM and
rwSAM (`sharpness`, `weighting`), and evaluation callbacks and metrics (`callbacks`, `evaluate`,
`metrics`). Implements Liu, HaoChen, Gaidon & Ma, "Self-supervised Learning is More Robust to Dataset
Imbalance", ICLR 2022.
"""

__version__ = "0.1.0"

from keras_ssl_lt import augment
from keras_ssl_lt import backbones
from keras_ssl_lt import callbacks
from keras_ssl_lt import data
from keras_ssl_lt import evaluate
from keras_ssl_lt import experiments
from keras_ssl_lt import features
from keras_ssl_lt import losses
from keras_ssl_lt import metrics
from keras_ssl_lt import sharpness
from keras_ssl_lt import weighting
from keras_ssl_lt.methods import BYOL, MoCoV2, Pretrainer, SimCLR, SimSiam, Supervised
from keras_ssl_lt.sharpness import RWSAM, SAM

__all__ = [
    "BYOL",
    "MoCoV2",
    "Pretrainer",
    "RWSAM",
    "SAM",
    "SimCLR",
    "SimSiam",
    "Supervised",
    "augment",
    "backbones",
    "callbacks",
    "data",
    "evaluate",
    "experiments",
    "features",
    "losses",
    "metrics",
    "sharpness",
    "weighting",
]
