"""The tfds loaders, offline: tfds' mock data and aligned fixtures of our own (DOMAIN.md: mock
data gives image and mask unrelated random shapes, so it cannot test the pet mask alone)."""
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")

from harness.data import tfds_sources


def test_cats_vs_dogs_pipelines_on_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=20):
        train, val, test = tfds_sources.cats_vs_dogs(32, batch_size=4, seed=0, data_dir=tmp_path, download=False)
        x, y = next(iter(train))
    assert x.shape == (4, 32, 32, 3) and x.dtype == tf.float32
    assert float(tf.reduce_max(x)) <= 1.0 and float(tf.reduce_min(x)) >= 0.0
    assert y.dtype in (tf.int64, tf.int32)
    assert sum(int(b[1].shape[0]) for b in test) >= 1


def pet_fixture(num):
    """Aligned Oxford-IIIT Pet records: a 30x40 image, a trimap with pet (1), border (3) and
    background (2), and species unrelated to the image, as the real data's schema has them."""
    rng = np.random.default_rng(0)

    def as_dataset(self, split, **kwargs):
        records = []
        for i in range(num):
            trimap = np.full((30, 40, 1), 2, np.uint8)
            trimap[5:10, 8:20] = 1
            trimap[10, 8:20] = 3
            records.append({"image": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8),
                            "segmentation_mask": trimap, "species": np.int64(i % 2), "label": np.int64(i),
                            "file_name": f"img{i}.jpg"})
        return tf.data.Dataset.from_generator(lambda: iter(records), output_signature={
            "image": tf.TensorSpec((30, 40, 3), tf.uint8), "segmentation_mask": tf.TensorSpec((30, 40, 1), tf.uint8),
            "species": tf.TensorSpec((), tf.int64), "label": tf.TensorSpec((), tf.int64),
            "file_name": tf.TensorSpec((), tf.string)})
    return as_dataset


def test_oxford_pet_examples_use_species_and_the_pet_plus_border_mask(tmp_path):
    with tfds.testing.mock_data(num_examples=4, as_dataset_fn=pet_fixture(4)):
        examples = list(tfds_sources.oxford_iiit_pet("test", limit=3, data_dir=tmp_path, download=False))
    assert len(examples) == 3
    assert [e.label for e in examples] == [0, 1, 0]
    e = examples[0]
    assert e.image.shape == (30, 40, 3)  # original size
    expected = np.zeros((30, 40), bool)
    expected[5:11, 8:20] = True
    assert np.array_equal(e.mask, expected)
    assert e.box == (5, 8, 10, 19)


def test_pet_example_rejects_misaligned_masks():
    with pytest.raises(ValueError, match="does not match image shape"):
        tfds_sources.pet_example(np.zeros((4, 5, 3), np.uint8), 0, np.ones((5, 4, 1), np.uint8))


@pytest.mark.parametrize("name,files", [("cats_vs_dogs", "kagglecatsanddogs_5340.zip"),
                                        ("oxford_iiit_pet", "images.tar.gz and annotations.tar.gz")])
def test_offline_errors_name_the_manual_folder_and_files(tmp_path, name, files):
    load = {"cats_vs_dogs": lambda: tfds_sources.cats_vs_dogs(32, 4, 0, tmp_path, download=False),
            "oxford_iiit_pet": lambda: list(tfds_sources.oxford_iiit_pet("test", 2, tmp_path, download=False))}[name]
    with pytest.raises(tfds_sources.DataUnavailableError) as err:
        load()
    msg = str(err.value)
    assert str(tmp_path / "downloads" / "manual") in msg and files in msg and "TFDS_DATA_DIR" in msg
    assert "--no-download" in msg and "could not be downloaded" not in msg
