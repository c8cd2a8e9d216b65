"""The catalogue of data sets: sorted, complete, described, and readable without importing torch."""

from edgesplit.data import SPLITS, list_datasets


def test_list_datasets_sorted_and_complete():
    names = list_datasets()
    assert names == sorted(names)
    assert {"digits", "cifar10", "cifar100", "mnist", "fashion_mnist", "kmnist", "emnist", "imagefolder",
            "facescrub", "celeba", "chestxray"} <= set(names)
    assert SPLITS == ("train", "test", "attack")


def test_every_data_set_is_described():
    from edgesplit.data import describe_datasets, list_datasets

    rows = describe_datasets()
    assert [r[0] for r in rows] == list_datasets()
    assert all(r[2] for r in rows), "each data set says what it reads"
    needs_root = dict((r[0], r[1]) for r in rows)
    assert needs_root["digits"] == needs_root["faces"] == "no" and needs_root["cifar10"] == "yes"


def test_the_torch_free_catalogue_names_every_loadable_data_set():
    from edgesplit.data.catalog import list_datasets
    from edgesplit.data.registry import SPECS

    assert list_datasets() == sorted(SPECS)
