"""Data sets in the IDX format of MNIST and Fashion-MNIST.

`load_idx` reads one IDX file (gzipped or not); `load_fashion_mnist` loads the four
Fashion-MNIST files of the Debian package ``dataset-fashion-mnist`` (or of any folder
that holds them, gzipped or not) as arrays ready for the estimators.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

# The IDX header: two zero bytes, a type code, the number of dimensions, then one
# big-endian uint32 per dimension; the payload follows, big-endian, in C order.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
# The files of each split, by the names of their download (gzipped); a folder may hold
# them uncompressed instead, without the .gz (as the downloads unpack).
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _read_bytes(path):
    """The file's content, decompressed when it starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def load_idx(path):
    """Read an IDX file (the format of MNIST and Fashion-MNIST).

    Parameters
    ----------
    path : str or os.PathLike
        The file, gzipped or not (gzip is recognised by its magic bytes, not by
        the file name).

    Returns
    -------
    array : ndarray
        The array in the file, with the shape of its header and the native-endian
        dtype of its type code (uint8, int8, int16, int32, float32 or float64).

    Raises
    ------
    ValueError
        If the file is not an IDX file, or is corrupt or truncated: bad magic
        number, unknown type code, a header shorter than its dimensions say, or a
        payload whose length does not match the dimensions.
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (the magic number must start with two zero "
            f"bytes, got {data[:2].hex()})"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown IDX type code 0x{code:02x}; expected one of "
            f"{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: an IDX file needs at least one dimension, got 0")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, "
            f"the file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: payload of {len(data) - header} bytes does not match the shape "
            f"{shape} of {dtype.name} ({expected} bytes); the file is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _find_idx(folder, name):
    """The path of the file `name` (ending in .gz) in folder, or of its uncompressed
    version (the name without .gz); None when neither is there."""
    for candidate in (name, name.removesuffix(".gz")):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def load_fashion_mnist(root=None, dtype=np.float32):
    """Load Fashion-MNIST: 60000 training and 10000 test images of 10 kinds of clothes.

    Parameters
    ----------
    root : str or os.PathLike, default=None
        The folder with ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``, or the same
        files uncompressed (``train-images-idx3-ubyte``, ...). None means the Debian
        package's folder, /usr/share/datasets/fashion-mnist.
    dtype : dtype, default=np.float32
        The floating dtype of the images.

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of tuples of ndarray
        X of shape (n_samples, 784), the 28x28 pixels row by row scaled to [0, 1];
        y of shape (n_samples,), int64 labels 0-9 (names in FASHION_MNIST_CLASSES).

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message names the folder and the files looked for,
        and says how to get them.
    ValueError
        If a file is corrupt, or the images and labels do not fit together.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    folder = FASHION_MNIST_ROOT if root is None else os.fspath(root)
    names = [name for pair in FASHION_MNIST_FILES.values() for name in pair]
    found = {name: _find_idx(folder, name) for name in names}
    missing = [name for name in names if found[name] is None]
    if missing:
        looked_for = ", ".join(f"{name} or {name.removesuffix('.gz')}" for name in missing)
        raise FileNotFoundError(
            f"Fashion-MNIST files not found in {folder}: looked for {looked_for}. "
            f"Install the data with `apt-get install dataset-fashion-mnist` "
            f"(Debian/Ubuntu), or download the four files and pass their folder as root="
        )
    splits = []
    for images_name, labels_name in FASHION_MNIST_FILES.values():
        paths = (found[images_name], found[labels_name])
        images, labels = (load_idx(path) for path in paths)
        if (images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1
                or len(images) != len(labels)):
            raise ValueError(
                f"{folder}: images of shape {images.shape} ({images.dtype}) and labels "
                f"of shape {labels.shape} do not form a data set; expected uint8 images "
                f"(n, 28, 28) and n labels"
            )
        X = images.reshape(len(images), -1).astype(dtype)
        X /= 255
        splits.append((X, labels.astype(np.int64)))
    return tuple(splits)
