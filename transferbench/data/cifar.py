"""CIFAR-10, for an image workload (data kind ``cifar10``): prepare it once into uint8 arrays with a manifest,
then read batches.

Preparation reads the standard python-pickle batch directory (``<root>/cifar-10-batches-py``) with
torchvision's own reader, ``torchvision.datasets.CIFAR10(root, download=False)``. Its md5 check only
knows the official files, so it is recorded (``official_md5`` in the manifest) rather than enforced;
the manifest's sha256 of the converted arrays is what every run verifies. Or from a ``datasets``
copy (``dataset: uoft-cs/cifar10``, image and label columns; needs the network once).

Training: per-channel normalisation (train-set mean and std), random crop (4-pixel zero padding) and
horizontal flip drawn from ``(data_seed, TRAIN, seed, step)``, switchable with ``augment``; a smaller
``image_size`` that divides 32 average-pools the images down (for CPU-sized runs). The held-out split
is the test batch: eval batch i is test images i*batch ... (i+1)*batch - 1.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from transferbench.data.base import TRAIN, Batch, Source, rng
from transferbench.data.prepared import DataError, load_manifest, write_manifest

SIDE = 32


def _torchvision_split(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray, bool, list[str]]:
    from torchvision.datasets import CIFAR10

    class Reader(CIFAR10):
        def _check_integrity(self) -> bool:  # our manifest checks the converted arrays
            return True

        def _load_meta(self) -> None:
            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as fh:
                self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]

    folder = root / CIFAR10.base_folder
    if not folder.is_dir():
        raise DataError(f"root: {folder} does not exist (the CIFAR-10 python batch directory)")
    try:
        ds = Reader(str(root), train=train, download=False)
    except (OSError, KeyError, pickle.UnpicklingError, ValueError, EOFError) as exc:
        raise DataError(f"{folder}: not a CIFAR-10 python batch directory ({type(exc).__name__}: {exc})") from None
    official = CIFAR10._check_integrity(ds)
    return np.asarray(ds.data, np.uint8), np.asarray(ds.targets, np.uint8), official, list(ds.classes)


def _datasets_split(spec: dict[str, Any], split: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    import datasets

    ds = datasets.load_dataset(spec["dataset"], spec.get("config"), split=split, revision=spec.get("revision"),
                               cache_dir=str(cache))
    img, lab = spec.get("image_column") or "img", spec.get("label_column") or "label"
    x = np.stack([np.asarray(im.convert("RGB"), np.uint8) for im in ds[img]])
    return x, np.asarray(ds[lab], np.uint8)


def prepare_cifar(spec: dict[str, Any], out_dir: Path) -> Path:
    """CIFAR-10 -> train_x/train_y/test_x/test_y .npy (NHWC uint8) + manifest.json in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.get("dataset"):
        parts = {"train": _datasets_split(spec, "train", out_dir / ".hf-cache"),
                 "test": _datasets_split(spec, spec.get("split") or "test", out_dir / ".hf-cache")}
        source: dict[str, Any] = {"dataset": spec["dataset"], "revision": spec.get("revision")}
        classes: list[str] = []
    else:
        root = Path(spec.get("root") or "")
        tr, te = _torchvision_split(root, True), _torchvision_split(root, False)
        parts = {"train": tr[:2], "test": te[:2]}
        source = {"root": str(root), "reader": "torchvision.datasets.CIFAR10", "official_md5": tr[2] and te[2]}
        classes = tr[3]
    arrays, files = {}, []
    for split, (x, y) in parts.items():
        if x.ndim != 4 or x.shape[1:] != (SIDE, SIDE, 3) or len(x) != len(y):
            raise DataError(f"{split}: images of shape {x.shape} and {len(y)} labels; expected (N, 32, 32, 3)")
        for name, arr in ((f"{split}_x", x), (f"{split}_y", y)):
            np.save(out_dir / f"{name}.npy", arr)
            arrays[name] = {"file": f"{name}.npy", "dtype": "uint8", "shape": list(arr.shape)}
            files.append(f"{name}.npy")
    train = parts["train"][0].astype(np.float64) / 255.0
    norm = {"mean": train.mean(axis=(0, 1, 2)).tolist(), "std": train.std(axis=(0, 1, 2)).tolist()}
    counts = {"train": len(parts["train"][1]), "test": len(parts["test"][1]),
              "num_classes": int(max(parts["train"][1].max(), parts["test"][1].max())) + 1}
    return write_manifest(out_dir, {"kind": "images", "source": source, "classes": classes, "counts": counts,
                                    "normalisation": norm, "arrays": arrays, "files": files})


class CifarImages(Source):
    """Batches of (3, S, S) float32 images, normalised, augmented when training; int64 labels."""

    kind = "cifar10"

    def __init__(self, path: str, image_size: int, num_classes: int, batch_size: int, augment: bool = True,
                 data_seed: int = 0) -> None:
        super().__init__(batch_size, data_seed)
        self.manifest = m = load_manifest(path, "images")
        if SIDE % int(image_size):
            raise DataError(f"image_size: {image_size} does not divide CIFAR's 32 pixels (use 32, 16 or 8)")
        if m["counts"]["num_classes"] > num_classes:
            raise DataError(f"{m['path']}: {m['counts']['num_classes']} classes, more than num_classes={num_classes}")
        self.pool, self.augment = SIDE // int(image_size), bool(augment)
        self.train_x, self.train_y = _load(m, "train_x"), _load(m, "train_y")
        self.test_x, self.test_y = _load(m, "test_x"), _load(m, "test_y")
        self.mean = np.asarray(m["normalisation"]["mean"], np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(m["normalisation"]["std"], np.float32).reshape(1, 3, 1, 1)

    def _images(self, x: np.ndarray, gen: np.random.Generator | None) -> np.ndarray:
        x = x.astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # NCHW
        if gen is not None:  # random crop of a 4-pixel zero padding, then a horizontal flip (He et al. 2016)
            n = len(x)
            padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
            dy, dx, flip = gen.integers(0, 9, n), gen.integers(0, 9, n), gen.random(n) < 0.5
            x = np.stack([padded[i, :, dy[i]:dy[i] + SIDE, dx[i]:dx[i] + SIDE] for i in range(n)])
            x[flip] = x[flip, :, :, ::-1]
        x = (x - self.mean) / self.std
        if self.pool > 1:
            n, c, s = x.shape[0], x.shape[1], SIDE // self.pool
            x = x.reshape(n, c, s, self.pool, s, self.pool).mean(axis=(3, 5))
        return np.ascontiguousarray(x, dtype=np.float32)

    def train_batch(self, seed: int, step: int) -> Batch:
        gen = rng(self.data_seed, TRAIN, seed, step)
        idx = np.sort(gen.integers(0, len(self.train_y), self.batch_size))
        return self._images(self.train_x[idx], gen if self.augment else None), self.train_y[idx].astype(np.int64)

    def eval_batch(self, index: int) -> Batch:
        idx = (np.arange(self.batch_size) + index * self.batch_size) % len(self.test_y)
        return self._images(self.test_x[idx], None), self.test_y[idx].astype(np.int64)

    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {"kind": self.kind, "manifest": m["path"], "manifest_sha256": m["manifest_sha256"],
                "train_images": m["counts"]["train"], "test_images": m["counts"]["test"], "augment": self.augment,
                "official_md5": m["source"].get("official_md5")}


def _load(manifest: dict[str, Any], name: str) -> np.ndarray:
    # .npy files carry a header: np.load with mmap, then the manifest's shape as a check
    arr = np.load(Path(manifest["path"]).parent / manifest["arrays"][name]["file"], mmap_mode="r")
    if list(arr.shape) != manifest["arrays"][name]["shape"]:
        raise DataError(f"{manifest['path']}: {name} has shape {list(arr.shape)}, the manifest says "
                        f"{manifest['arrays'][name]['shape']}")
    return arr

