"""The evaluation input rule: labels, features, number of classes, and reading (images, labels) data."""

import numpy as np
import pytest

from keras_ssl_lt.evaluation import (
    as_arrays,
    check_features,
    check_labels,
    resolve_num_classes,
)


@pytest.mark.parametrize(
    "labels, want",
    [
        (np.array([0, 3, 1], "int8"), [0, 3, 1]),
        (np.array([0, 3, 1], "uint16"), [0, 3, 1]),
        (np.array([0.0, 3.0, 1.0], "float32"), [0, 3, 1]),
        ([2.0, 0.0], [2, 0]),
        (np.zeros(0, "int64"), []),
    ],
)
def test_accepted_labels(labels, want):
    y = check_labels(labels)
    assert y.dtype == np.int64 and y.tolist() == want


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 1.7], "integer class ids.*1.7"),
        ([0, np.nan], "integer class ids"),
        ([0, np.inf], "integer class ids"),
        (np.array([True, False]), "dtype bool"),
        (np.array(["0", "1"]), "dtype <U1"),
        (np.array([0, None], dtype=object), "dtype object"),
        ([0, -1], "non-negative"),
        ([[0, 1]], "1-D"),
    ],
)
def test_refused_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        check_labels(labels)


def test_labels_below_num_classes():
    assert check_labels([0, 2], num_classes=3).tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        check_labels([0, 2], num_classes=2)


def test_features_rule():
    assert check_features(np.array([[1, 2]], "int32")).dtype == np.float32
    with pytest.raises(ValueError, match=r"`test` features contain NaN or infinite values \(row 1\)"):
        check_features([[0.0, 1.0], [np.inf, 0.0]], "test")
    with pytest.raises(ValueError, match="flat features"):
        check_features(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="empty"):
        check_features(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="dimension 2, but 3"):
        check_features(np.zeros((1, 2)), dim=3)


def test_resolve_num_classes():
    assert resolve_num_classes(None, [0, 0]) == 2  # at least two
    assert resolve_num_classes(None, [0, 4], [4, 0]) == 5
    assert resolve_num_classes(6, [0, 4], [5]) == 6
    with pytest.raises(ValueError, match=r"test labels \[1, 3\] never occur"):
        resolve_num_classes(None, [0, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="num_classes"):
        resolve_num_classes(1, [0])
    with pytest.raises(ValueError, match="num_classes"):
        resolve_num_classes(2.0, [0])
    with pytest.raises(ValueError, match=r"test labels must lie in \[0, num_classes\) = \[0, 3\)"):
        resolve_num_classes(3, [0, 1], [3])


def test_as_arrays_reads_tuples_dict_batches_and_tuple_batches():
    x = np.arange(4 * 2 * 2 * 1).reshape(4, 2, 2, 1)
    y = np.array([0, 1, 1, 0])
    for data in (
        (x, y),
        [{"images": x[:2], "labels": y[:2]}, {"images": x[2:], "labels": y[2:]}],
        [(x[:3], y[:3]), (x[3:], y[3:])],
    ):
        xa, ya = as_arrays(data)
        np.testing.assert_array_equal(xa, x)
        assert ya.tolist() == y.tolist()
    assert as_arrays((x, y.astype("float32")))[1].dtype == np.int64


def test_as_arrays_bad_input():
    x = np.zeros((4, 2, 2, 1))
    with pytest.raises(ValueError, match="dict"):
        as_arrays({"images": x, "labels": [0, 1, 0, 1]}, "train_data")
    with pytest.raises(ValueError, match="one integer label per image"):
        as_arrays((x, [0, 1]), "train_data")
    with pytest.raises(ValueError, match="empty"):
        as_arrays([], "test_data")
    with pytest.raises(ValueError, match="'images' and 'labels'"):
        as_arrays([{"x": x}])
    with pytest.raises(ValueError, match="train_data labels"):
        as_arrays((x, [0, 1.5, 0, 1]), "train_data")
