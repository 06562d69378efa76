"""keras-ssl-lt: self-supervised learning under dataset imbalance, for Keras 3."""

__version__ = "0.1.0"
