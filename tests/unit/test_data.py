import numpy as np

from ebjr.training import data


def test_splits_have_the_documented_sizes_shapes_and_ranges():
    sizes = {}
    for split in data.SPLITS:
        images, labels = data.load_split(split)
        assert images.dtype == np.float32 and images.shape[1:] == (1, 28, 28)
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert set(np.unique(labels)) == set(range(10))
        sizes[split] = len(labels)
    assert sizes == {"train": 55_000, "val": 5_000, "test": 10_000}


def test_validation_split_is_fixed_and_disjoint_from_train():
    order = np.random.default_rng(data.SPLIT_SEED).permutation(60_000)
    val_rows, train_rows = set(order[: data.VAL_SIZE]), set(order[data.VAL_SIZE :])
    assert not val_rows & train_rows
    val_a, _ = data.load_split("val")
    val_b, _ = data.load_split("val")
    np.testing.assert_array_equal(val_a, val_b)
    train_all = data.read_idx(data.data_dir() / data.FILES["train"][0])
    np.testing.assert_array_equal(val_a[:5, 0] * 255, train_all[order[:5]].astype(np.float32))
