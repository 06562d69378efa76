"""The paper's theory toy model, simulated: data, the two linear models, closed forms and measures.

`toy_data` samples the toy distribution and gives its second moment in closed form; `toy_models` holds the
supervised two-layer linear network and the linear SSL model (both trained with plain `model.fit` on any
backend); `closed_forms` gives what each converges to; `measures` the feature alignments and the linear
probes; `simulation.run_toy` runs one setting end to end. See `docs/explanation.md`.
"""

from keras_ssl_lt.theory.closed_forms import (
    ssl_closed_form,
    ssl_closed_form_alignment,
    supervised_min_norm_features,
)
from keras_ssl_lt.theory.measures import alignment, linear_probe_accuracy
from keras_ssl_lt.theory.simulation import run_toy
from keras_ssl_lt.theory.toy_data import (
    FREQUENT,
    RARE,
    sample_toy,
    toy_basis,
    toy_second_moment,
)
from keras_ssl_lt.theory.toy_models import (
    LinearSSL,
    fit_ssl,
    fit_supervised,
    ssl_objective,
    two_layer_linear,
)

__all__ = [
    "FREQUENT",
    "RARE",
    "LinearSSL",
    "alignment",
    "fit_ssl",
    "fit_supervised",
    "linear_probe_accuracy",
    "run_toy",
    "sample_toy",
    "ssl_closed_form",
    "ssl_closed_form_alignment",
    "ssl_objective",
    "supervised_min_norm_features",
    "toy_basis",
    "toy_second_moment",
    "two_layer_linear",
]
