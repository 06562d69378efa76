"""The toy model's two learners as Keras models trained with plain `model.fit` on any backend.

- Supervised: a two-layer linear network `f(x) = W2 W1 x` (no biases), softmax cross-entropy over the three
  classes, full-batch gradient descent from a small initialisation. On separable data its direction
  converges to the minimum-norm margin-1 solution (`closed_forms.supervised_min_norm_features`). The
  representation is `W1 x`.
- SSL: a linear map `W` (`feature_dim x d`) minimising the paper's objective on positive pairs
  `(x + xi, x + xi')`, `xi, xi' ~ N(0, aug_std^2 I)` drawn afresh every step:
  `-E[(W(x + xi))^T (W(x + xi'))] + 1/2 ||W^T W||_F^2` (`ssl_objective`). Its minimisers span the top
  eigenvectors of the positive-pair second moment (`closed_forms.ssl_closed_form`).

Both are written with `keras.ops` only; the SSL loss is an override of `Model.compute_loss`, so each
backend's own Keras trainer differentiates it.
"""

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_int, check_non_negative, check_number

__all__ = ["FullBatches", "LinearSSL", "fit_ssl", "fit_supervised", "ssl_objective", "two_layer_linear"]


def ssl_objective(za, zb, kernel):
    """`-mean_i <za_i, zb_i> + 1/2 ||W^T W||_F^2` for features `z = x @ kernel` (`kernel = W^T`, `(d, m)`).

    `||W^T W||_F = ||kernel^T kernel||_F`, computed on the small `(m, m)` Gram matrix.

    >>> import numpy as np
    >>> k = np.eye(2, dtype="float32"); z = np.ones((3, 2), "float32")
    >>> float(ssl_objective(z, z, k))
    -1.0
    """
    gram = ops.matmul(ops.transpose(kernel), kernel)
    return -ops.mean(ops.sum(za * zb, axis=-1)) + 0.5 * ops.sum(ops.square(gram))


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class LinearSSL(keras.Model):
    """Linear representation `z = W x` trained with the paper's SSL objective on Gaussian positive pairs.

    `call(x)` returns the features `W x` (inference) or, in training, the stacked features of two noisy
    copies `(W(x + xi), W(x + xi'))`; `compute_loss` evaluates `ssl_objective` on them (on clean features
    when evaluating). `kernel` holds `W^T` with shape `(input_dim, feature_dim)`.

    Args:
        input_dim: `d`. feature_dim: `m`, the number of learned features.
        aug_std: standard deviation of the positive-pair noise `xi` (the paper: 1).
        init_scale: standard deviation of the Gaussian initialisation of `W`.
        seed: integer seed of the initialisation and of the noise stream.

    Example:

    >>> import numpy as np, keras
    >>> model = LinearSSL(input_dim=3, feature_dim=2, seed=0)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1))
    >>> x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    >>> model.fit(x, batch_size=32, epochs=2, verbose=0).history["loss"][-1] < 0.1
    True
    >>> model.predict(x[:4], verbose=0).shape
    (4, 2)
    """

    def __init__(self, input_dim, feature_dim, aug_std=1.0, init_scale=0.01, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = check_int(input_dim, "input_dim", low=1)
        self.feature_dim = check_int(feature_dim, "feature_dim", low=1)
        self.aug_std = check_non_negative(aug_std, "aug_std")
        self.init_scale = check_number(init_scale, "init_scale", low=0.0, low_open=True)
        self.seed = seed
        self.kernel = self.add_weight(
            shape=(self.input_dim, self.feature_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.init_scale, seed=seed),
            name="kernel",
        )
        self.noise_seed = keras.random.SeedGenerator(None if seed is None else int(seed) + 1)

    def call(self, x, training=False):
        x = ops.cast(x, self.compute_dtype)
        if not training:
            return ops.matmul(x, self.kernel)
        xa = x + self.aug_std * keras.random.normal(ops.shape(x), seed=self.noise_seed, dtype=x.dtype)
        xb = x + self.aug_std * keras.random.normal(ops.shape(x), seed=self.noise_seed, dtype=x.dtype)
        return ops.stack([ops.matmul(xa, self.kernel), ops.matmul(xb, self.kernel)])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if len(y_pred.shape) == 3:
            za, zb = y_pred[0], y_pred[1]
        else:
            za = zb = y_pred
        return ssl_objective(za, zb, self.kernel)

    def features(self, x):
        """`W x` as numpy (no noise)."""
        return np.asarray(ops.convert_to_numpy(self(ops.convert_to_tensor(np.asarray(x, "float32")))))

    def get_weights_matrix(self):
        """`W` as a numpy `(feature_dim, input_dim)` array."""
        return np.asarray(ops.convert_to_numpy(self.kernel)).T

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            feature_dim=self.feature_dim,
            aug_std=self.aug_std,
            init_scale=self.init_scale,
            seed=self.seed,
        )
        return config


def two_layer_linear(input_dim, hidden_dim, num_classes=3, init_scale=0.01, seed=None):
    """`f(x) = W2 W1 x`: `Dense(hidden_dim)` ("features", `W1^T`) then `Dense(num_classes)` ("logits"), no biases.

    Example:

    >>> model = two_layer_linear(5, 4, seed=0)
    >>> [tuple(w.shape) for w in model.get_weights()]
    [(5, 4), (4, 3)]
    """
    input_dim = check_int(input_dim, "input_dim", low=1)
    hidden_dim = check_int(hidden_dim, "hidden_dim", low=1)
    num_classes = check_int(num_classes, "num_classes", low=2)
    init_scale = check_number(init_scale, "init_scale", low=0.0, low_open=True)
    seeds = (None, None) if seed is None else (int(seed), int(seed) + 1)

    def init(s):
        return keras.initializers.RandomNormal(stddev=init_scale, seed=s)

    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(hidden_dim, use_bias=False, kernel_initializer=init(seeds[0]), name="features"),
            keras.layers.Dense(num_classes, use_bias=False, kernel_initializer=init(seeds[1]), name="logits"),
        ],
        name="two_layer_linear",
    )


class FullBatches(keras.utils.PyDataset):
    """The whole training set as one batch, `steps` times per epoch: full-batch gradient descent in `fit`.

    >>> import numpy as np
    >>> ds = FullBatches(np.zeros((4, 2)), steps=3)
    >>> len(ds), ds[2].shape
    (3, (4, 2))
    """

    def __init__(self, x, y=None, steps=1):
        super().__init__()
        self.x = np.asarray(x, "float32")
        self.y = None if y is None else np.asarray(y, "int32")
        self.steps = check_int(steps, "steps", low=1)

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        return self.x if self.y is None else (self.x, self.y)


def fit_supervised(x, y, hidden_dim=4, num_classes=3, steps=2000, lr=0.5, init_scale=0.01, seed=0):
    """Train `two_layer_linear` by full-batch gradient descent (SGD, no momentum) on cross-entropy.

    Returns `(model, W1)` with `W1` the learned feature map as a numpy `(hidden_dim, d)` array.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [-1.0, 0.0]], "float32"); y = np.array([0, 1])
    >>> _, w1 = fit_supervised(x, y, hidden_dim=2, num_classes=2, steps=200, seed=0)
    >>> bool(np.abs(w1[:, 0]).max() > 10 * np.abs(w1[:, 1]).max())
    True
    """
    x = np.asarray(x, "float32")
    model = two_layer_linear(x.shape[1], hidden_dim, num_classes, init_scale, seed)
    model.compile(
        optimizer=keras.optimizers.SGD(check_number(lr, "lr", low=0.0, low_open=True)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(FullBatches(x, y, steps), epochs=1, verbose=0)
    w1 = np.asarray(ops.convert_to_numpy(model.get_layer("features").kernel)).T
    return model, w1


def fit_ssl(x, feature_dim=4, steps=1000, lr=0.05, aug_std=1.0, init_scale=0.01, seed=0):
    """Train `LinearSSL` by full-batch gradient descent (fresh positive-pair noise every step).

    Returns `(model, W)` with `W` the learned `(feature_dim, d)` map.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32") * [2.0, 1.0, 0.1]
    >>> _, w = fit_ssl(x, feature_dim=1, steps=300, lr=0.1, aug_std=0.0)
    >>> round(abs(float(w[0, 0]) / float(np.linalg.norm(w))), 2)
    1.0
    """
    x = np.asarray(x, "float32")
    model = LinearSSL(x.shape[1], feature_dim, aug_std=aug_std, init_scale=init_scale, seed=seed)
    model.compile(optimizer=keras.optimizers.SGD(check_number(lr, "lr", low=0.0, low_open=True)))
    model.fit(FullBatches(x, None, steps), epochs=1, verbose=0)
    return model, model.get_weights_matrix()
