"""One name per pre-training method: the registry that presets, recipes and the command line read.

A method's name is the key of its hyper-parameters in a config (`cfg["methods"][name]`), of its records
(`RunSpec.method`) and of its `--methods` value on the command line. `register_method` adds a `Pretrainer`
subclass under a new name (a method of your own); `get_method` returns the class and refuses an unknown name
with the list of known ones. Built in: the paper's five, and the field's long-tail methods (docs/longtail.md):
`simclr_ts` and `moco_v2_ts` (SimCLR / MoCo v2 whose config gives `temperature` a schedule, TS), `sdclr`,
`bcl` (BCL-I) and `bcl_d` (BCL-D, BCL on SDCLR). A name is a class plus the hyper-parameters a config gives it, so two names may share a class.

Example:

>>> from keras_ssl_lt.methods import registry
>>> registry.method_names()
('simsiam', 'simclr', 'moco_v2', 'byol', 'supervised', 'simclr_ts', 'moco_v2_ts', 'sdclr', 'bcl', 'bcl_d')
>>> registry.get_method("simclr").__name__
'SimCLR'
>>> registry.needs_labels("supervised"), registry.needs_labels("simsiam")
(True, False)
"""

from __future__ import annotations

from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.methods.bcl import BCL, BCLD
from keras_ssl_lt.methods.byol import BYOL
from keras_ssl_lt.methods.moco import MoCoV2
from keras_ssl_lt.methods.sdclr import SDCLR
from keras_ssl_lt.methods.simclr import SimCLR
from keras_ssl_lt.methods.simsiam import SimSiam
from keras_ssl_lt.methods.supervised import Supervised

__all__ = ["get_method", "method_names", "needs_labels", "register_method", "unregister_method"]

# name -> (class, takes `num_classes`: a supervised method whose head needs the number of classes)
_METHODS = {}


def register_method(name: str, cls: type[Pretrainer], supervised: bool = False, overwrite: bool = False) -> None:
    """Registers `cls` (a `Pretrainer` subclass) under `name` (lower case, letters, digits and `_`).

    `supervised=True` says the constructor takes `num_classes` (its head predicts labels). A name already
    taken is refused unless `overwrite=True`.

    Example:

    >>> from keras_ssl_lt.methods import registry, SimCLR
    >>> class MySimCLR(SimCLR):
    ...     pass
    >>> registry.register_method("my_simclr", MySimCLR)
    >>> registry.get_method("my_simclr").__name__
    'MySimCLR'
    >>> registry.unregister_method("my_simclr")
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"`name` must be a lower-case identifier (letters, digits, `_`); got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Pretrainer)):
        raise TypeError(f"`cls` must be a subclass of keras_ssl_lt.methods.Pretrainer; got {cls!r}")
    if name in _METHODS and not overwrite:
        raise ValueError(
            f"method {name!r} is already registered (to {_METHODS[name][0].__name__}); pass overwrite=True"
        )
    _METHODS[name] = (cls, bool(supervised))


def unregister_method(name: str) -> None:
    """Removes a method registered with `register_method` (the built-in ones cannot be removed)."""
    if name in _BUILTIN:
        raise ValueError(f"the built-in method {name!r} cannot be unregistered")
    get_method(name)
    del _METHODS[name]


def method_names() -> tuple[str, ...]:
    """The registered names, in registration order (the built-in ones first)."""
    return tuple(_METHODS)


def get_method(name: str) -> type[Pretrainer]:
    """The `Pretrainer` subclass registered as `name`; an unknown name raises a ValueError listing the known."""
    if name not in _METHODS:
        raise ValueError(f"`method` must be one of {method_names()}; got {name!r}")
    return _METHODS[name][0]


def needs_labels(name: str) -> bool:
    """True when the method's constructor takes `num_classes` (a supervised head)."""
    get_method(name)
    return _METHODS[name][1]


for _name, _cls, _sup in (
    ("simsiam", SimSiam, False),
    ("simclr", SimCLR, False),
    ("moco_v2", MoCoV2, False),
    ("byol", BYOL, False),
    ("supervised", Supervised, True),
    ("simclr_ts", SimCLR, False),
    ("moco_v2_ts", MoCoV2, False),
    ("sdclr", SDCLR, False),
    ("bcl", BCL, False),
    ("bcl_d", BCLD, False),
):
    register_method(_name, _cls, supervised=_sup)
_BUILTIN = frozenset(_METHODS)
