"""keras-ssl-lt: self-supervised learning under dataset imbalance, for Keras 3.

Long-tailed data builders (`keras_ssl_lt.data`), on-device augmentation (`augment`), backbones,
SSL and supervised pre-trainers used through plain `model.fit` on TensorFlow, JAX and PyTorch
(`SimSiam`, `SimCLR`, `MoCoV2`, `BYOL`, `Supervised`), the sharpness-aware regularisers SAM, ASAM and
rwSAM (`rwsam`; `sharpness` and `weighting` are short aliases of `rwsam.sharpness` and
`rwsam.weights`), and evaluation (`evaluation`: probes, kNN, transfer, metrics, callbacks; short aliases `evaluate`
and `metrics`, callbacks also in `callbacks`).
Implements Liu, HaoChen, Gaidon & Ma, "Self-supervised Learning is More Robust to Dataset
Imbalance", ICLR 2022.
"""

__version__ = "0.1.0"

from keras_ssl_lt import augment, backbones, callbacks, data, evaluation, experiments, losses, optimizers, rwsam
from keras_ssl_lt.methods import BYOL, MoCoV2, Pretrainer, SimCLR, SimSiam, Supervised
from keras_ssl_lt.rwsam import RWSAM, SAM, sharpness
from keras_ssl_lt.rwsam import weights as weighting

# Short names of the README tour: `ksl.evaluate.knn(...)`, `ksl.metrics.gap(...)`.
evaluate = evaluation
metrics = evaluation.metrics

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
    "evaluation",
    "experiments",
    "losses",
    "metrics",
    "optimizers",
    "rwsam",
    "sharpness",
    "weighting",
]
