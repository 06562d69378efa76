"""`Pretrainer`: the shared `keras.Model` base of every pre-training method.

A method contributes its heads and one function, `compute_loss_terms(views, labels, training)`, from a
batch of augmented views to a per-example loss vector. The base owns everything else: the `train_step`
on all three backends, on-device augmentation, metrics, the example-weight table and the optional
sharpness-aware regulariser (SAM / ASAM / rwSAM, see `keras_ssl_lt.rwsam`).
"""

import copy

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._batchnorm import batchnorm_layers
from keras_ssl_lt._checks import check_bool, check_positive_int
from keras_ssl_lt.evaluation.collapse import RankMeMetric
from keras_ssl_lt.losses import embedding_std
from keras_ssl_lt.methods.heads import check_head_init
from keras_ssl_lt.methods.safeguards import TrainingSafeguards
from keras_ssl_lt.methods.saving import RandomStateSaving
from keras_ssl_lt.rwsam import sharpness as sharpness_lib
from keras_ssl_lt.rwsam.step import StepHooks
from keras_ssl_lt.rwsam.weights import check_index, validate_weights
from keras_ssl_lt.training import BackendStep

__all__ = ["Pretrainer"]

_MISSING_INDEX = (
    "RWSAM needs each batch to carry the examples' positions in the source dataset under 'index' (as "
    "`keras_ssl_lt.data.ssl_dataset` yields); got a batch without it"
)


def _check_encoder(encoder):
    if not isinstance(encoder, keras.layers.Layer):
        raise ValueError(f"`encoder` must be a keras Model or Layer; got {type(encoder).__name__}")
    try:
        shape = encoder.output_shape if isinstance(encoder, keras.Model) else None
    except (AttributeError, ValueError):
        shape = None
    if shape is None or not isinstance(shape, tuple) or len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            "`encoder` must be a built model with flat output features of shape (batch, dim), such as "
            "`keras_ssl_lt.backbones.small_resnet()`; got output shape "
            f"{shape!r}. Build it with an Input (functional API) and end with global pooling."
        )
    return int(shape[-1])


def batchnorm_variables(layer):
    """The moving statistics of every `BatchNormalization` layer inside `layer`, found with public Keras APIs.

    Nested layers are reached through `keras.Model.layers` (subclassed, functional and Sequential models);
    a plain `keras.layers.Layer` exposes no public list of its sub-layers, so a BatchNormalization hidden
    inside one cannot be found: that raises a ValueError rather than silently updating its statistics
    twice per SAM step.

    Example:

    >>> import keras
    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    >>> [v.name for v in batchnorm_variables(m)]
    ['moving_mean', 'moving_variance']
    """
    return [v for bn in batchnorm_layers(layer) for v in bn.non_trainable_variables]


class Pretrainer(TrainingSafeguards, RandomStateSaving, BackendStep, keras.Model):
    """Base class of the pre-trainers: a `keras.Model` trained with plain `fit` on any backend.

    Batches are dicts `{"images": uint8 (B, H, W, C), "labels": int (B,), "index": int (B,)}` as made by
    `keras_ssl_lt.data.ssl_dataset` (a bare image array or an `(images, labels)` tuple also works when
    no example weights are needed). Each step draws `num_views` random views on the device with
    `augmenter`, computes the method's per-example loss, and updates the weights, with a two-pass
    sharpness-aware step when compiled with `sharpness=SAM(...)` or `RWSAM(...)`.

    Subclasses implement:

    - `compute_loss_terms(views, labels, training)` returning a dict with `"loss"` (per-example,
      shape `(B,)`), `"embedding"` (`(B, D)`, for the collapse monitor) and any extra entries that
      `after_optimizer_step` needs or whose names are in `extra_metrics` (scalars to log);
    - optionally `after_optimizer_step(terms)` for momentum encoders and queues, and `num_views`;
    - optionally `uses_index = True`: training steps then pass the batch's `index` (positions in the source
      dataset, as for rwSAM's weights) to `compute_loss_terms(..., index=index)`, for per-example state such
      as BCL's momentum losses (evaluation steps pass `index=None`); a batch without `index` is refused;
    - optionally `fit_callbacks()`: callbacks the method needs during every `fit` (an epoch-wise pruning
      mask, a schedule's steps per epoch), added by `fit` after the user's.

    Logged metrics: `loss` (the plain mean loss at the current weights), `z_std` (the collapse monitor:
    per-dimension std of the L2-normalised embeddings, about `1/sqrt(D)` when healthy and 0 on
    collapse), `rankme` (RankMe, the effective rank of all the epoch's embeddings, 1 on collapse and up to
    `D`; see `keras_ssl_lt.evaluation.collapse.RankMeMetric`: accumulated at the cost of one `D x D` product
    per step and computed once per epoch when Keras reads the epoch's logs, so per-batch logs, and those of
    `train_on_batch` / `test_on_batch`, carry 0 for it: not computed; a computed RankMe is at least 1), with
    SAM also `perturbed_loss` (the loss at `w + eps`) and with rwSAM `weighted_loss`.

    Args:
        encoder: a built `keras.Model` from images to flat features; exposed as `model.encoder`.
        augmenter: a layer mapping raw images to normalised views (random in training mode,
            deterministic preprocessing in inference mode), e.g. `keras_ssl_lt.augment.simsiam_cifar()`;
            `None` feeds images to the encoder as float32 unchanged.
        num_examples: size of the source dataset, to create the example-weight table used by rwSAM
            (one weight per example, looked up by each batch's `index`). It can also be created later by
            `set_example_weights` or by `compile(sharpness=RWSAM(weights=...))`, before `fit`.
        rankme: log `rankme` (default True). Its epoch-end cost is one float64 eigendecomposition of a `D x D`
            matrix on the host (about 6 s at D = 2048 on a 2-core CPU, milliseconds at D = 128): turn it off for
            many short epochs of a wide head, as the GPU campaign does.
        head_init: initialisation of the heads' Dense layers: `"keras"` (Glorot uniform, zero bias; the
            default) or `"torch"` (`torch.nn.Linear`'s uniform `+-1/sqrt(fan_in)` kernel and bias), see
            `keras_ssl_lt.methods.heads.dense_initializers` and docs/fidelity.md.

    Pre-made views: a batch dict may carry `"views"`, a float array `(B, num_views, H, W, C)` of views
    made elsewhere (a host pipeline, another library, a parity check), instead of `"images"`. The
    augmenter is then not used in training or evaluation steps: the views go to the encoder as they are
    (cast to the compute dtype).

    Safeguards: a method whose loss needs several examples per batch (`min_batch_size`, 2 for SimSiam,
    SimCLR and BYOL) refuses smaller training batches with a ValueError; `fit` stops with a
    `FloatingPointError` when a logged loss becomes NaN or infinite (NaN/Inf in the inputs, a too-large
    learning rate or SAM radius), checked one step late so that the device does not wait for the check
    (`keras_ssl_lt.training.common.LossWatch`). Saving (`.keras`, `save_weights`) keeps the random-generator
    states, so training resumed from a saved model continues its augmentation stream.
    """

    num_views = 2
    extra_metrics = ()
    # True: training steps pass the batch's `index` to `compute_loss_terms` (per-example state).
    uses_index = False
    # The smallest training batch (per replica) on which the method's loss is defined, and why.
    min_batch_size = 1
    min_batch_reason = ""

    def __init__(self, encoder, augmenter=None, num_examples=None, head_init="keras", rankme=True, **kwargs):
        super().__init__(**kwargs)
        self.head_init = check_head_init(head_init)
        self.rankme = check_bool(rankme, "rankme")
        self.feature_dim = _check_encoder(encoder)
        if augmenter is not None and not isinstance(augmenter, keras.layers.Layer):
            raise ValueError(f"`augmenter` must be a keras Layer or None; got {type(augmenter).__name__}")
        self.encoder = encoder
        self.augmenter = augmenter
        self.example_weights = None
        self.num_examples = None
        if num_examples is not None:
            self._create_weight_table(num_examples)
        self._sharpness = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.z_std_tracker = keras.metrics.Mean(name="z_std")
        self.perturbed_loss_tracker = keras.metrics.Mean(name="perturbed_loss")
        self.weighted_loss_tracker = keras.metrics.Mean(name="weighted_loss")
        self.extra_trackers = [keras.metrics.Mean(name=n) for n in self.extra_metrics]
        # Built at first use, once the heads exist; None with `rankme=False`.
        self.rankme_tracker = RankMeMetric(name="rankme") if self.rankme else None
        self._eval_view_state = None
        self._capture_eval_view_state()
        self._ksl_loss_watch = None

    # ------------------------------------------------------------------ configuration
    def _create_weight_table(self, num_examples):
        num_examples = check_positive_int(num_examples, "num_examples")  # the source dataset's size
        if self.example_weights is not None:
            if int(num_examples) != self.num_examples:
                raise ValueError(
                    f"the model's example-weight table has {self.num_examples} entries; got weights for "
                    f"{num_examples} examples"
                )
            return
        self.num_examples = int(num_examples)
        self.example_weights = self.add_weight(
            shape=(self.num_examples,),
            initializer="ones",
            trainable=False,
            dtype="float32",
            name="example_weights",
        )

    def set_example_weights(self, weights, indices=None):
        """Writes per-example weights into the table used by rwSAM.

        Args:
            weights: 1-D array; with `indices=None` one weight per source example (creating the table
                if the model has none yet), else one weight per entry of `indices`.
            indices: optional positions in the source dataset to update; other entries keep their value.

        Safe to call from a callback during `fit` on every backend, between epochs or between steps: the
        next step sees the new values (on JAX the values `fit` holds are written back to the variables first).
        """
        self._ksl_sync_state()
        if indices is None:
            w = validate_weights(weights, "weights")
            self._create_weight_table(len(w))
            self.example_weights.assign(w)
            return
        if self.example_weights is None:
            raise ValueError(
                "the model has no example-weight table: pass `num_examples=` to the constructor or call "
                "`set_example_weights(weights)` with one weight per source example first"
            )
        idx = np.asarray(indices)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"`indices` must be a 1-D integer array; got shape {idx.shape}, dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_examples):
            raise ValueError(f"`indices` must lie in [0, {self.num_examples}); got range [{idx.min()}, {idx.max()}]")
        w = validate_weights(weights, "weights", length=len(idx))
        table = np.array(keras.ops.convert_to_numpy(self.example_weights.value), dtype="float32")
        table[idx] = w
        self.example_weights.assign(table)

    def get_example_weights(self):
        """The example-weight table as a numpy array (`None` if the model has none)."""
        if self.example_weights is None:
            return None
        self._ksl_sync_state()
        return np.asarray(keras.ops.convert_to_numpy(self.example_weights.value))

    def compile(self, optimizer="sgd", sharpness=None, **kwargs):
        """Configures training: the optimizer and the optional sharpness-aware regulariser.

        Args:
            optimizer: any Keras optimizer (the paper: SGD with momentum 0.9 and weight decay).
            sharpness: `None`, `keras_ssl_lt.rwsam.SAM(...)` (SAM / ASAM) or `RWSAM(...)`.
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, `steps_per_execution`, ...).
                A `loss` is not accepted: the method defines its own.
        """
        if optimizer is None:
            raise ValueError(
                f"`optimizer` of {type(self).__name__}.compile must be a Keras optimizer or its name (e.g. 'sgd' "
                "or `keras.optimizers.SGD(0.05, momentum=0.9)`); got None"
            )
        for bad in ("loss", "loss_weights", "metrics", "weighted_metrics"):
            if kwargs.get(bad) is not None:
                raise ValueError(
                    f"`{bad}` is not accepted by {type(self).__name__}.compile: the method defines its loss "
                    "and logs its own metrics"
                )
            kwargs.pop(bad, None)
        if keras.config.dtype_policy().name == "mixed_float16":
            raise ValueError(
                "the `mixed_float16` dtype policy needs loss scaling, which the two-pass step does not do; "
                "use `keras.config.set_dtype_policy('mixed_bfloat16')` or `'float32'`"
            )
        sharpness = sharpness_lib.get(sharpness)
        if isinstance(sharpness, sharpness_lib.RWSAM):
            if sharpness.weights is not None:
                w = sharpness.weights
                self._create_weight_table(len(w))
                self.example_weights.assign(w)
            elif self.example_weights is None:
                raise ValueError(
                    "RWSAM needs per-example weights: pass `RWSAM(weights=...)` (one per source example), or "
                    "create the table with `num_examples=` / `set_example_weights` before compiling"
                )
        self._sharpness = sharpness
        super().compile(optimizer=optimizer, **kwargs)
        first = sharpness is not None and sharpness.bn_update == "first"
        self._ksl_bn_variables = self._batchnorm_variables() if first else []
        self._capture_eval_view_state()

    @property
    def sharpness(self):
        """The regulariser given to `compile` (`None` for plain steps)."""
        return self._sharpness

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        if self._sharpness is not None:
            config["sharpness"] = keras.saving.serialize_keras_object(self._sharpness)
        return config

    def compile_from_config(self, config):
        config = dict(config)
        sharp = config.pop("sharpness", None)
        config = keras.saving.deserialize_keras_object(config)
        self.compile(sharpness=sharpness_lib.get(sharp), **config)
        # Heads and encoder are built in __init__, so the optimizer can be built now and its saved
        # state (momentum buffers, iteration count) restored with the weights.
        self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "augmenter": keras.saving.serialize_keras_object(self.augmenter),
                "num_examples": self.num_examples,
                "head_init": self.head_init,
                "rankme": self.rankme,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # Keras' deserialisation consumes nested configs: keep the caller's intact
        for key in ("encoder", "augmenter"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    @property
    def metrics(self):
        rankme = [] if self.rankme_tracker is None else [self._rankme_metric()]
        out = [self.loss_tracker, self.z_std_tracker, *rankme, *self.extra_trackers]
        if self._sharpness is not None:
            out.append(self.perturbed_loss_tracker)
            if self._sharpness.weighted:
                out.append(self.weighted_loss_tracker)
        return out

    def _rankme_metric(self):
        """The `rankme` tracker, built at the first use (eager: Keras reads `metrics` before the first step).

        Its size is the method's `embedding_dim`, or, for a method that does not declare one, the dimension of
        its `"embedding"` found once by running `compute_loss_terms` on two zero images in inference mode (no
        variable changes; about 2 s of eager ops on JAX, hence the declaration).
        """
        if not self.rankme_tracker.built:
            dim = self.embedding_dim
            if dim is None:  # a method that does not declare it: one inference pass on two zero images
                shape = tuple(32 if d is None else int(d) for d in self.encoder.input_shape[1:])
                views = [ops.zeros((2, *shape), self.compute_dtype) for _ in range(self.num_views)]
                dim = self._loss_terms(views, ops.zeros((2,), "int32"), False)["embedding"].shape[-1]
            self.rankme_tracker.build(int(dim))
        return self.rankme_tracker

    @property
    def embedding_dim(self):
        """The dimension of `compute_loss_terms`' `"embedding"` (RankMe's size), or None when the method does not
        declare it (it is then found by one inference pass). The built-in methods declare it."""
        return None

    # ------------------------------------------------------------------ subclass API
    def compute_loss_terms(self, views, labels, training=True):
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss_terms")

    def after_optimizer_step(self, terms):
        """Updates after the optimizer step (momentum encoders, queues). Default: nothing."""

    def fit_callbacks(self):
        """Callbacks this method needs in every `fit` (added after the user's). Default: none."""
        return []

    def _loss_terms(self, views, labels, training, index=None):
        """`compute_loss_terms`, with `index=` for a method that declares `uses_index`."""
        if self.uses_index:
            return self.compute_loss_terms(views, labels, training=training, index=index)
        return self.compute_loss_terms(views, labels, training=training)

    def make_views(self, images, training=True, index=None):
        """`num_views` augmented views of a batch of raw images (one random draw each).

        `index`: the batch's positions in the source dataset, given by training steps of a method that
        declares `uses_index` (for per-example augmentation, as BCL's); the base's views do not use it.
        """
        return [self._preprocess(images, training=training) for _ in range(self.num_views)]

    # ------------------------------------------------------------------ forward
    def _preprocess(self, images, training=False):
        if self.augmenter is None:
            return ops.cast(images, self.compute_dtype)
        return self.augmenter(images, training=training)

    def call(self, inputs, training=False):
        """Encoder features of raw images (inference preprocessing), so `predict` gives features.

        A dict with pre-made `"views"` gives the features of its first view (taken as they are).
        """
        if self._has_views(inputs):
            return self.encoder(self._split_views(inputs["views"])[0], training=training)
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        return self.encoder(self._preprocess(images, training=False), training=training)

    @staticmethod
    def _unpack(data):
        labels = None
        if isinstance(data, (tuple, list)):
            labels = data[1] if len(data) > 1 else None
            data = data[0]
        if isinstance(data, dict):
            has_images, has_views = "images" in data, "views" in data
            if has_images == has_views:
                raise ValueError(
                    "a batch dict must have exactly one of 'images' (raw images, augmented on the device) or "
                    f"'views' (pre-made views, (B, num_views, H, W, C)); got keys {sorted(data)}"
                )
            if data.get("labels") is not None:
                labels = data["labels"]
            return data["images" if has_images else "views"], labels, data.get("index")
        return data, labels, None

    @staticmethod
    def _has_views(data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        return isinstance(data, dict) and "views" in data

    def _split_views(self, views):
        """The `num_views` views of a pre-made `(B, V, H, W, C)` batch, cast to the compute dtype."""
        shape = tuple(views.shape)
        if len(shape) != 5 or shape[1] != self.num_views:
            raise ValueError(
                f"pre-made 'views' must have shape (batch, {self.num_views}, height, width, channels) for "
                f"{type(self).__name__} (num_views={self.num_views}); got {shape}"
            )
        return [ops.cast(views[:, i], self.compute_dtype) for i in range(self.num_views)]

    def _batchnorm_variables(self):
        return batchnorm_variables(self)

    # ------------------------------------------------------------------ evaluation views
    def _capture_eval_view_state(self):
        """Records the augmenter's random state once: every evaluation draws its views from this fixed state."""
        if self.augmenter is None:
            return
        variables = self.augmenter.non_trainable_variables
        if self._eval_view_state is not None and len(self._eval_view_state) == len(variables):
            return
        self._eval_view_state = [np.array(ops.convert_to_numpy(v.value)) for v in variables]

    def _augmenter_seed_states(self):
        """The augmenter's random-generator states (Keras `SeedGenerator` variables)."""
        if self.augmenter is None:
            return []
        return [v for v in self.augmenter.non_trainable_variables if v.name == "seed_generator_state"]

    def make_eval_views(self, images):
        """`num_views` random views drawn from a fixed evaluation state of the augmenter's random generators.

        The same images always give the same views, and the augmenter's training state (its seed
        generators) is left exactly as it was: `evaluate` is reproducible and does not change training.
        The fixed state is the augmenter's state when the pre-trainer was built (or first compiled, for
        state created later); each batch of an evaluation is drawn from it afresh.
        """
        if self.augmenter is None:
            return self.make_views(images, training=True)
        variables = self.augmenter.non_trainable_variables
        if self._eval_view_state is None or len(self._eval_view_state) != len(variables):
            raise ValueError("the augmenter's state changed since the pre-trainer was compiled; call `compile` again")
        with self._ksl_no_grad():
            saved = [ops.copy(v.value) for v in variables]
            for v, value in zip(variables, self._eval_view_state, strict=True):
                v.assign(value)
        views = self.make_views(images, training=True)
        with self._ksl_no_grad():
            for v, value in zip(variables, saved, strict=True):
                v.assign(value)
        return views

    # ------------------------------------------------------------------ host-side batch checks
    def make_train_function(self, force=False):
        """Keras' train function, wrapped so each batch is checked on the host before its step runs.

        With rwSAM the batch's `index` must lie inside the example-weight table; a bad batch raises a
        ValueError before any weight, statistic or optimizer state changes, on every backend (inside the
        compiled step an out-of-range lookup would be clamped, NaN or a bare device error).
        """
        result = super().make_train_function(force=force)
        function = self.train_function
        if function is not None and not getattr(function, "_ksl_guarded", False):
            guarded = self._ksl_guard_train_function(function)
            guarded._ksl_guarded = True
            self.train_function = guarded
            result = guarded if result is not None else result
        return result

    def _ksl_checks_batches(self):
        return self.uses_index or (self._sharpness is not None and self._sharpness.weighted)

    def _ksl_check_batch(self, data):
        """Host-side check of one batch (rwSAM, per-example state: `index` present and inside the table)."""
        _, _, index = self._unpack(data)
        if index is None:
            raise ValueError(self._missing_index_message())
        check_index(self._ksl_to_numpy(index).reshape(-1), self.num_examples)

    def _missing_index_message(self):
        if self._sharpness is not None and self._sharpness.weighted:
            return _MISSING_INDEX
        return (
            f"{type(self).__name__} keeps per-example state, so each batch must carry the examples' positions in "
            "the source dataset under 'index' (as `keras_ssl_lt.data.ssl_dataset` yields); got a batch without it"
        )

    # ------------------------------------------------------------------ the step
    def _ksl_step_hooks(self):
        """This model's backend mechanics, as the regulariser's two-pass step takes them."""
        return StepHooks(self._ksl_value_and_grad, self._ksl_no_grad, self._ksl_global_gradients)

    def _ksl_train_step(self, data):
        images, labels, index = self._unpack(data)
        self._check_batch_size(images)
        sharp = self._sharpness
        weights = None
        if index is None and (self.uses_index or (sharp is not None and sharp.weighted)):
            raise ValueError(self._missing_index_message())
        if sharp is not None and sharp.weighted:
            weights = ops.take(self.example_weights, ops.cast(index, "int32"), axis=0)
        # Under tf.distribute each replica draws its own augmentations (not copies of one another's).
        if self._has_views(data):
            views = self._split_views(images)
        else:
            with self._ksl_replica_random(self._augmenter_seed_states()):
                views = self.make_views(images, training=True, index=index if self.uses_index else None)
        variables = self.trainable_variables

        def loss_fn(weighted):
            example_weights = weights if weighted else None

            def fn():
                terms = self._loss_terms(views, labels, True, index)
                per_example = self._guard_small_batch(ops.cast(terms["loss"], "float32"))
                loss = ops.mean(per_example)
                objective = loss if example_weights is None else ops.mean(per_example * example_weights)
                return objective, (loss, terms)

            return fn

        if sharp is None:
            _, (loss, terms), grads = self._ksl_value_and_grad(loss_fn(False), variables)
        else:
            # The regulariser owns its two-pass step (keras_ssl_lt.rwsam.step); the model lends its backend.
            step = sharp.gradients(loss_fn, variables, self._ksl_step_hooks(), self._ksl_bn_variables)
            (loss, terms), grads = step.ascent_aux, step.gradients
            self.perturbed_loss_tracker.update_state(step.perturbed_value)
            if sharp.weighted:
                self.weighted_loss_tracker.update_state(step.ascent_value)
        with self._ksl_no_grad():
            self.optimizer.apply(grads, variables)
            self.after_optimizer_step(terms)
        return self._update_metrics(loss, terms)

    def _ksl_test_step(self, data):
        images, labels, _ = self._unpack(data)
        views = self._split_views(images) if self._has_views(data) else self.make_eval_views(images)
        terms = self._loss_terms(views, labels, False)
        loss = ops.mean(ops.cast(terms["loss"], "float32"))
        return self._update_metrics(loss, terms)

    def _update_metrics(self, loss, terms):
        embedding = ops.cast(terms["embedding"], "float32")
        self.loss_tracker.update_state(loss)
        self.z_std_tracker.update_state(embedding_std(embedding))
        rankme = None if self.rankme_tracker is None else self._rankme_metric()
        if rankme is not None:
            rankme.update_state(embedding)
        for tracker in self.extra_trackers:
            tracker.update_state(terms[tracker.name])
        # RankMe's eigenvalues are computed on the host when Keras reads the epoch's logs (`get_metrics_result`
        # after the last step; it does so when the step's logs have the same keys), never here in every step.
        # The step's own logs carry 0 for it (finite; a computed RankMe is at least 1).
        return {m.name: (ops.convert_to_tensor(0.0) if m is rankme else m.result()) for m in self.metrics}

    # ------------------------------------------------------------------ evaluation helpers
    def per_example_losses(self, images, labels=None, batch_size=256):
        """Pre-training loss of each example (random views, BatchNorm in inference mode) as numpy `(N,)`.

        Used for the rare-class generalisation gap (loss on held-out minus training examples).
        Views come from `make_eval_views` (a fixed evaluation state of the augmenter's generators), so the
        result is reproducible and weights, statistics and the training random state are not changed.
        """
        images = np.asarray(images)
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"`images` must be a non-empty batch (N, H, W, C); got shape {images.shape}")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(images),):
                raise ValueError(f"`labels` must have shape ({len(images)},); got {labels.shape}")
        out = []
        for start in range(0, len(images), batch_size):
            x = ops.convert_to_tensor(images[start : start + batch_size])
            y = None if labels is None else ops.convert_to_tensor(labels[start : start + batch_size].astype("int32"))
            views = self.make_eval_views(x)
            terms = self._loss_terms(views, y, False)
            out.append(np.asarray(ops.convert_to_numpy(ops.cast(terms["loss"], "float32"))))
        return np.concatenate(out)
