"""Per-example Gaussian blur with torchvision's kernel and sigma rule."""

import keras
from keras import ops

from keras_ssl_lt._checks import check_probability, check_range, is_int
from keras_ssl_lt.augment.base import AugmentLayer
from keras_ssl_lt.augment.ops import default_blur_kernel, gaussian_blur, to_float01

__all__ = ["RandomGaussianBlur"]


def _check_kernel_size(kernel_size, image_size=None):
    ok = is_int(kernel_size) and kernel_size >= 1 and kernel_size % 2 == 1
    if ok and image_size is not None:
        ok = (kernel_size - 1) // 2 < image_size
    if not ok:
        limit = "" if image_size is None else f" with (kernel_size - 1) / 2 < the image side {image_size}"
        raise ValueError(f"`kernel_size` must be None or an odd positive int{limit}; got {kernel_size!r}")
    return int(kernel_size)


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomGaussianBlur(AugmentLayer):
    """Per-example Gaussian blur with probability `p` and sigma uniform in `sigma` (torchvision's GaussianBlur).

    Each example draws its own sigma and its own coin. The kernel is the sampled Gaussian of odd size
    `kernel_size` (None: about 10% of the shorter image side, 23 for 224 and 3 for 32), applied
    separably with reflect padding. MoCo v2's code blurred PIL images with `radius=sigma`, a similar
    but not identical kernel.

    Why not `keras.layers.RandomGaussianBlur`: it draws one sigma per batch (for all examples), not one
    per example.

    Example:

    >>> import numpy as np
    >>> tuple(RandomGaussianBlur(p=1.0, seed=0)(np.random.rand(2, 32, 32, 3).astype("float32"), training=True).shape)
    (2, 32, 32, 3)
    """

    def __init__(self, p=0.5, sigma=(0.1, 2.0), kernel_size=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = check_probability(p, "p")
        self.sigma = check_range(sigma, "sigma", positive=True)
        self.kernel_size = None if kernel_size is None else _check_kernel_size(kernel_size)

    def kernel_for(self, side):
        """The kernel size used on images whose shorter side is `side`; raises if it does not fit.

        >>> RandomGaussianBlur().kernel_for(224), RandomGaussianBlur(kernel_size=5).kernel_for(32)
        (23, 5)
        """
        return _check_kernel_size(self.kernel_size or default_blur_kernel(side), side)

    def call(self, inputs, training=False):
        x = to_float01(inputs)
        if training and self.p > 0:
            k = self.kernel_for(min(x.shape[1], x.shape[2]))
            batch = ops.shape(x)[0]
            sigma = keras.random.uniform((batch,), self.sigma[0], self.sigma[1], seed=self.seed_generator)
            blur = keras.random.uniform((batch,), seed=self.seed_generator) < self.p
            x = ops.where(blur[:, None, None, None], gaussian_blur(x, sigma, k), x)
        return self.output_cast(x)

    def get_config(self):
        config = super().get_config()
        config.update(p=self.p, sigma=self.sigma, kernel_size=self.kernel_size)
        return config
