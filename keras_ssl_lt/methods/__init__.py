"""Pre-training methods: each is a `Pretrainer` with its heads and a per-example loss.

The paper's methods (SimSiam, SimCLR, MoCo v2, BYOL, supervised) and the field's long-tail methods
(docs/longtail.md): `SDCLR` (a pruned self-competitor, `pruning`), `BCL` and `BCLD` (BCL-I and BCL-D: boosted
views from momentum losses, on SimCLR and on SDCLR) and TS (a temperature schedule of SimCLR / MoCo v2, `temperature`).
"""

from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.bcl import BCL, BCLD
from keras_ssl_lt.methods.byol import BYOL
from keras_ssl_lt.methods.moco import MoCoV2
from keras_ssl_lt.methods.sdclr import SDCLR
from keras_ssl_lt.methods.simclr import SimCLR
from keras_ssl_lt.methods.simsiam import SimSiam
from keras_ssl_lt.methods.supervised import Supervised
from keras_ssl_lt.methods.temperature import CosineTemperature

__all__ = [
    "BCL",
    "BCLD",
    "BYOL",
    "SDCLR",
    "CosineTemperature",
    "MoCoV2",
    "Pretrainer",
    "SimCLR",
    "SimSiam",
    "Supervised",
]
