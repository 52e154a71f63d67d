"""fastmlp.datasets: IDX files the tests write themselves, corrupt ones, and the real
Fashion-MNIST files when the Debian package is installed."""
import gzip
import os

import numpy as np
import pytest

from fastmlp import datasets

CODES = {np.dtype(v).newbyteorder("=").name: k for k, v in datasets.IDX_DTYPES.items()}


def idx_bytes(array):
    """The IDX encoding of array (header, then big-endian payload)."""
    array = np.asarray(array)
    code = CODES[array.dtype.name]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, payload, gz):
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (0, 28, 28)])
def test_load_idx_round_trip(tmp_path, gz, dtype, shape):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info:
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        array = rng.standard_normal(shape).astype(dtype)
    got = datasets.load_idx(write(tmp_path / "a.idx", idx_bytes(array), gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert got.shape == shape
    np.testing.assert_array_equal(got, array)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    plain_named_gz = write(tmp_path / "plain.gz", idx_bytes(array), gz=False)
    gz_named_plain = write(tmp_path / "zipped.idx", idx_bytes(array), gz=True)
    np.testing.assert_array_equal(datasets.load_idx(plain_named_gz), array)
    np.testing.assert_array_equal(datasets.load_idx(gz_named_plain), array)


GOOD = idx_bytes(np.arange(24, dtype=np.int32).reshape(2, 3, 4))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("payload, match", [
    (b"", "too short"),
    (b"\x00\x00\x08", "too short"),
    (b"\x12\x34" + GOOD[2:], "not an IDX file"),
    (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX type code 0x0a"),
    (b"\x00\x00\x08\x00", "at least one dimension"),
    (GOOD[:10], "truncated header"),
    (GOOD[:-1], "payload of 95 bytes"),
    (GOOD + b"\x00", "payload of 97 bytes"),
], ids=["empty", "short", "magic", "dtype", "ndim0", "header", "truncated", "extra"])
def test_corrupt_idx_rejected(tmp_path, gz, payload, match):
    with pytest.raises(ValueError, match=match):
        datasets.load_idx(write(tmp_path / "bad", payload, gz))


def test_corrupt_gzip_rejected(tmp_path):
    zipped = gzip.compress(GOOD)
    truncated = write(tmp_path / "cut.gz", zipped[: len(zipped) // 2], gz=False)
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        datasets.load_idx(truncated)
    flipped = bytearray(zipped)
    flipped[-6] ^= 0xFF  # the CRC no longer matches
    bad_crc = write(tmp_path / "crc.gz", bytes(flipped), gz=False)
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        datasets.load_idx(bad_crc)


def fake_fashion_mnist(folder, n_train=6, n_test=4, n_test_labels=None, gz=True):
    """Random Fashion-MNIST files in folder: gzipped under the download's names, or
    uncompressed without the .gz (gz=False)."""
    rng = np.random.default_rng(1)
    sizes = {"train": (n_train, n_train), "test": (n_test, n_test_labels or n_test)}
    data = {}
    for split, (images_name, labels_name) in datasets.FASHION_MNIST_FILES.items():
        n_images, n_labels = sizes[split]
        images = rng.integers(0, 256, size=(n_images, 28, 28)).astype(np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = rng.integers(0, 10, size=n_labels).astype(np.uint8)
        if not gz:
            images_name, labels_name = (n.removesuffix(".gz") for n in (images_name, labels_name))
        write(folder / images_name, idx_bytes(images), gz=gz)
        write(folder / labels_name, idx_bytes(labels), gz=gz)
        data[split] = images, labels
    return data


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "uncompressed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_fashion_mnist_from_folder(tmp_path, dtype, gz):
    data = fake_fashion_mnist(tmp_path, gz=gz)
    splits = datasets.load_fashion_mnist(root=tmp_path, dtype=dtype)
    for (X, y), (images, labels) in zip(splits, (data["train"], data["test"])):
        assert X.shape == (len(images), 784) and X.dtype == dtype
        assert y.dtype == np.int64
        assert X.min() == 0 and X.max() == 1
        np.testing.assert_allclose(X * 255, images.reshape(len(images), -1), atol=1e-4)
        np.testing.assert_array_equal(y, labels)


def test_load_fashion_mnist_missing_file(tmp_path):
    fake_fashion_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(root=tmp_path)
    with pytest.raises(FileNotFoundError, match="root="):
        datasets.load_fashion_mnist(root=tmp_path / "nowhere")


def test_missing_files_are_named_with_their_folder(tmp_path):
    fake_fashion_mnist(tmp_path, gz=False)
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    os.remove(tmp_path / "t10k-images-idx3-ubyte")
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_fashion_mnist(root=tmp_path)
    message = str(info.value)
    assert f"not found in {tmp_path}: looked for" in message
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert f"{name}.gz or {name}" in message
    for present in ("train-images", "t10k-labels"):
        assert present not in message


def test_load_fashion_mnist_bad_input(tmp_path):
    fake_fashion_mnist(tmp_path, n_test_labels=3)
    with pytest.raises(ValueError, match="do not form a data set"):
        datasets.load_fashion_mnist(root=tmp_path)
    with pytest.raises(ValueError, match="floating dtype"):
        datasets.load_fashion_mnist(root=tmp_path, dtype=np.uint8)


@pytest.mark.skipif(
    not os.path.isdir(datasets.FASHION_MNIST_ROOT),
    reason=f"{datasets.FASHION_MNIST_ROOT} absent (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist():
    (X_train, y_train), (X_test, y_test) = datasets.load_fashion_mnist()
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32
    assert X_train.min() == 0 and X_train.max() == 1
    # Fashion-MNIST is balanced: 6000 training and 1000 test images of each class.
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))
    assert len(datasets.FASHION_MNIST_CLASSES) == 10
