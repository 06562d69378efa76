"""Data builders: sources, long-tailed subsets and byte-moving pipelines.

`keras_ssl_lt.data.imbalance` and `keras_ssl_lt.data.sources` import without TensorFlow;
`keras_ssl_lt.data.pipeline` (in memory) and `keras_ssl_lt.data.streaming` (decoded per batch, for
datasets larger than memory) use tf.data when TensorFlow imports and fall back to a
`keras.utils.PyDataset` otherwise.
"""

from keras_ssl_lt.data.demo import demo_images
from keras_ssl_lt.data.imbalance import (
    PROFILES,
    Subset,
    balanced_counterpart,
    check_labels,
    class_groups,
    long_tail_counts,
    make_subset,
)
from keras_ssl_lt.data.manifest import labels_hash, load_manifest, save_manifest
from keras_ssl_lt.data.pipeline import ArrayBatches, BatchPlan, ssl_dataset, supervised_dataset
from keras_ssl_lt.data.semi_synthetic import SemiSyntheticSource, compose_halves, semi_synthetic, semi_synthetic_eval
from keras_ssl_lt.data.sources import (
    ArraySource,
    FolderSource,
    NpzSource,
    Source,
    TfdsSource,
    from_arrays,
    from_folder,
    from_npz,
    from_tfds,
    load_source,
)
from keras_ssl_lt.data.streaming import (
    SplitFileSource,
    StreamBatches,
    decode_image,
    from_split_file,
    read_split_file,
    split_subset,
    stream_dataset,
    stream_order,
    write_image_folder,
)
