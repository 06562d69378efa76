"""keras-ssl-lt: self-supervised learning under dataset imbalance, for Keras 3.

Long-tailed data builders (`keras_ssl_lt.data`), on-device augmentation (`augment`), backbones,
SSL and supervised pre-trainers used through plain `model.fit` on TensorFlow, JAX and PyTorch
(`SimSiam`, `SimCLR`, `MoCoV2`, `BYOL`, `Supervised`), the sharpness-aware regularisers SAM, ASAM and
rwSAM (`rwsam`), evaluation (`evaluation`: probes, kNN, transfer, metrics) and its Keras callbacks
(`callbacks`). The experiment protocol (`keras_ssl_lt.experiments`), the theory experiments (`theory`) and the
backend-specific training code (`training`) are imported explicitly. Each public object has one import path
(docs/api.md); the pre-trainers, `SAM` and `RWSAM` are also at the top level.
Implements Liu, HaoChen, Gaidon & Ma, "Self-supervised Learning is More Robust to Dataset
Imbalance", ICLR 2022.
"""

__version__ = "0.1.0"

from keras_ssl_lt import augment, backbones, callbacks, data, evaluation, losses, optimizers, rwsam
from keras_ssl_lt.methods import BCL, BCLD, BYOL, SDCLR, MoCoV2, Pretrainer, SimCLR, SimSiam, Supervised
from keras_ssl_lt.rwsam import RWSAM, SAM

__all__ = [
    "BCL",
    "BCLD",
    "BYOL",
    "RWSAM",
    "SAM",
    "SDCLR",
    "MoCoV2",
    "Pretrainer",
    "SimCLR",
    "SimSiam",
    "Supervised",
    "augment",
    "backbones",
    "callbacks",
    "data",
    "evaluation",
    "losses",
    "optimizers",
    "rwsam",
]
