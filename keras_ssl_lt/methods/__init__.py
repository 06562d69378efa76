"""Pre-training methods: each is a `Pretrainer` with its heads and a per-example loss."""

from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.byol import BYOL
from keras_ssl_lt.methods.moco import MoCoV2
from keras_ssl_lt.methods.simclr import SimCLR
from keras_ssl_lt.methods.simsiam import SimSiam
from keras_ssl_lt.methods.supervised import Supervised

__all__ = ["BYOL", "MoCoV2", "Pretrainer", "SimCLR", "SimSiam", "Supervised"]
