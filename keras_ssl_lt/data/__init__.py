"""Data builders: sources, long-tailed subsets and byte-moving pipelines.

Modules, each importing only those above it in this list:

- `manifest`: subset manifests (JSON), the labels hash, the manifest check;
- `profiles`: per-class count profiles and many / medium / few groups;
- `imbalance`: `make_subset`, `balanced_counterpart`, `Subset` (numpy only);
- `decode`: image decoding and resizing (PIL, or tf ops);
- `sources`: labelled sources (arrays, `.npz`, folders, split files, TFDS) and `load_source`;
- `splits`: published split files as subsets, a synthetic pool in ImageNet-LT's layout;
- `batching`: the batch plan and tf.data helpers shared by both pipelines;
- `pipeline` (in memory) and `streaming` (decoded per batch, for datasets larger than memory): batches
  for `fit`, through tf.data when TensorFlow imports, a `keras.utils.PyDataset` otherwise;
- `semi_synthetic`, `demo`: derived and synthetic sources;
- `community`: the community CIFAR-LT protocol of SDCLR / BCL / TS (validation split, r = 0.01, splits 1..5).

`keras_ssl_lt.data.imbalance` and `keras_ssl_lt.data.sources` import without TensorFlow.
"""

from keras_ssl_lt.data.batching import BatchPlan
from keras_ssl_lt.data.community import COMMUNITY_DATASETS, CommunitySplit, community_split
from keras_ssl_lt.data.decode import decode_image
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
from keras_ssl_lt.data.pipeline import ArrayBatches, ssl_dataset, supervised_dataset
from keras_ssl_lt.data.semi_synthetic import SemiSyntheticSource, compose_halves, semi_synthetic, semi_synthetic_eval
from keras_ssl_lt.data.sources import (
    ArraySource,
    FolderSource,
    NpzSource,
    Source,
    SplitFileSource,
    TfdsSource,
    from_arrays,
    from_folder,
    from_npz,
    from_split_file,
    from_tfds,
    load_source,
    read_split_file,
)
from keras_ssl_lt.data.splits import split_subset, write_image_folder
from keras_ssl_lt.data.streaming import StreamBatches, stream_dataset, stream_order
