"""Saving a pre-trainer's random-generator states, so that training resumed from a saved model continues its stream.

A mixin of `Pretrainer`: Keras does not save `SeedGenerator` states, so a loaded model would restart its
augmentation stream and a resumed training would replay its first augmentations.
"""

import warnings

import numpy as np

__all__ = ["RandomStateSaving"]

# Keys of the random-generator states in a saved model's own variables (`save_own_variables`).
_SEED_KEY = "seed_generator_state_"
_EVAL_KEY = "eval_view_state_"


class RandomStateSaving:
    """Mixin of `keras_ssl_lt.methods.Pretrainer`: its random-generator states in `.keras` files and weights."""

    # ------------------------------------------------------------------ saving: the random-generator states
    def _seed_generator_states(self):
        """Every random-generator state of the model (the augmenter's, and any other layer's), in a fixed order."""
        return [v for v in self.non_trainable_variables if v.name == "seed_generator_state"]

    def save_own_variables(self, store):
        """Keras' own variables, plus the random-generator states and the fixed evaluation state of the views.

        Keras does not save `SeedGenerator` states, so a loaded model would restart its augmentation stream
        and a resumed training would replay its first augmentations; they are saved here.
        """
        super().save_own_variables(store)
        for i, v in enumerate(self._seed_generator_states()):
            store[f"{_SEED_KEY}{i}"] = v
        for i, value in enumerate(self._eval_view_state or []):
            store[f"{_EVAL_KEY}{i}"] = value

    def load_own_variables(self, store):
        keys = list(store.keys())

        def numbered(prefix):
            return sorted((k for k in keys if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :]))

        seed_keys, eval_keys = numbered(_SEED_KEY), numbered(_EVAL_KEY)
        extra = set(seed_keys) | set(eval_keys)
        super().load_own_variables({k: store[k] for k in keys if k not in extra})
        states = self._seed_generator_states()
        if seed_keys:
            if len(seed_keys) != len(states):
                raise ValueError(
                    f"the saved model holds {len(seed_keys)} random-generator states, this {type(self).__name__} "
                    f"has {len(states)}: the file was saved from a different model"
                )
            for v, k in zip(states, seed_keys, strict=True):
                v.assign(store[k])
        elif states:
            warnings.warn(
                "the saved model holds no random-generator states (saved before keras-ssl-lt kept them): the "
                "augmentation stream restarts, so training resumed from it repeats its first augmentations",
                stacklevel=2,
            )
        if eval_keys and self._eval_view_state is not None and len(eval_keys) == len(self._eval_view_state):
            self._eval_view_state = [np.array(store[k]) for k in eval_keys]
