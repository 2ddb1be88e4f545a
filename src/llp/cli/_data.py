"""What ``DATA`` means on the command line: a built-in dataset or a CSV, Parquet or NPZ file.

The conventions follow scikit-learn's: one row per example, a label column (``--target``)
for tables, ``X``/``y`` arrays for NPZ files. Tables get the ``mlp`` family, image and
signal arrays the ``cnn`` family.

``DataRecipe`` is how the data was read; ``llp tune`` stores it with the study so that
``llp report`` can read the same data again in another process (for the loss-landscape
slices) and check, by fingerprint, that it is still the same data.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llp._files import parquet_size, too_large
from llp.cli._errors import CliError, one_line

if TYPE_CHECKING:
    import pandas as pd

    from llp.data import FidelityData

Family = Literal["mlp", "resmlp", "cnn"]
#: The families ``--family`` names (``auto`` picks ``mlp`` or ``cnn`` by the data's shape).
FAMILIES: tuple[str, ...] = ("mlp", "resmlp", "cnn")
#: Families that read one flat row of features per example.
TABLE_FAMILIES: tuple[str, ...] = ("mlp", "resmlp")

#: Share of the examples held out for validation (the shipped knowledge used the same).
VAL_FRACTION = 0.2
#: Mini-batch size (the shipped knowledge used the same).
BATCH_SIZE = 64

#: Column names taken as the label when ``--target`` is not given (else the last column).
TARGET_NAMES = ("target", "label", "labels", "class", "y")
#: The most data ``llp tune`` reads: NPZ arrays once decompressed, Parquet columns
#: uncompressed (checked before loading; larger data belongs to the Python API).
MAX_INPUT_BYTES = 256 * 2**20
_NPZ_LABELS = ("y", "labels", "label", "target", "targets")
_NPZ_FEATURES = ("X", "x", "data", "images", "features", "inputs")
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}


#: scikit-learn's files of the built-in datasets, in its ``datasets/data`` folder.
_BUNDLED_FILES = {
    "digits": "digits.csv.gz",
    "iris": "iris.csv",
    "wine": "wine_data.csv",
    "breast_cancer": "breast_cancer.csv",
}


def _load_sklearn(name: str, *, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A built-in dataset as scikit-learn's ``load_NAME`` gives it. Its file is read
    directly where it has the layout those loaders read (importing scikit-learn takes
    longer than the rest of a report's data step); otherwise the loader is used."""
    read = _read_bundled(name)
    if read is None:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")()
        read = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)
    X, y = read
    if images:
        side = math.isqrt(X.shape[1])
        X = X.reshape(-1, 1, side, side)  # (n, 1, 8, 8): one channel
    return X, y


def _read_bundled(name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(data, target)`` from scikit-learn's file of ``name`` without importing it, or
    ``None`` when the file is missing or not laid out as expected: a header line
    ``n_samples,n_features,...`` (none for digits), then the features and the class."""
    spec = importlib.util.find_spec("sklearn")  # finds the package, imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    path = folder / _BUNDLED_FILES[name]
    try:
        if name == "digits":
            table = np.loadtxt(path, delimiter=",", ndmin=2)
            shape = (1797, 64)
        else:
            with path.open(encoding="utf-8") as handle:
                header = handle.readline().split(",")
                shape = (int(header[0]), int(header[1]))
                table = np.loadtxt(handle, delimiter=",", ndmin=2)
    except (OSError, ValueError, IndexError):
        return None
    if table.shape != (shape[0], shape[1] + 1):
        return None
    return np.ascontiguousarray(table[:, :-1]), table[:, -1].astype(int)


#: Built-in datasets (scikit-learn's small bundled datasets; no download).
BUILTIN_DATASETS: Mapping[str, tuple[str, Callable[[], tuple[np.ndarray, np.ndarray]]]] = {
    "digits": (
        "8x8 handwritten digits as 64 pixel features (1797 x 64, 10 classes)",
        lambda: _load_sklearn("digits"),
    ),
    "digits-images": (
        "the same digits as 1x8x8 images, for the cnn family",
        lambda: _load_sklearn("digits", images=True),
    ),
    "iris": ("iris flowers (150 x 4, 3 classes)", lambda: _load_sklearn("iris")),
    "wine": ("wine cultivars (178 x 13, 3 classes)", lambda: _load_sklearn("wine")),
    "breast_cancer": (
        "breast cancer diagnosis (569 x 30, 2 classes)",
        lambda: _load_sklearn("breast_cancer"),
    ),
}


@dataclass(frozen=True)
class DataRecipe:
    """How ``DATA`` was read, as stored with a study (JSON values only).

    Attributes
    ----------
    data : str
        The built-in name, or the absolute path of the file.
    target : str or None
        The label column (tables) or array (NPZ) actually used.
    family : {"mlp", "resmlp", "cnn"}
    val_fraction, batch_size, standardize
        How :class:`llp.data.FidelityData` prepared it.
    """

    data: str
    target: str | None
    family: Family
    val_fraction: float = VAL_FRACTION
    batch_size: int = BATCH_SIZE
    standardize: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "target": self.target,
            "family": self.family,
            "val_fraction": self.val_fraction,
            "batch_size": self.batch_size,
            "standardize": self.standardize,
        }

    @classmethod
    def from_dict(cls, value: Any) -> DataRecipe:
        """Read back :meth:`to_dict` output; raises :class:`CliError` if malformed."""
        if not isinstance(value, Mapping) or not isinstance(value.get("data"), str):
            raise CliError("The study holds no readable data recipe (settings['cli']).")
        family = value.get("family")
        if family not in FAMILIES:
            raise CliError(f"The study's data recipe names an unknown family {family!r}.")
        target = value.get("target")
        return cls(
            data=value["data"],
            target=target if isinstance(target, str) else None,
            family=family,
            val_fraction=float(value.get("val_fraction", VAL_FRACTION)),
            batch_size=int(value.get("batch_size", BATCH_SIZE)),
            standardize=bool(value.get("standardize", True)),
        )


@dataclass(frozen=True)
class LoadedData:
    """``DATA`` read and checked: arrays ready for :class:`llp.data.FidelityData`.

    ``frame`` is set for tables (one-hot encoding happens in ``FidelityData``);
    ``X``/``y`` for arrays.
    """

    name: str
    recipe: DataRecipe
    description: str
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    frame: pd.DataFrame | None = None

    def fidelity_data(self, *, seed: int) -> FidelityData:
        """The nested fidelity subsets and validation split, seeded by the study seed."""
        from llp.data import FidelityData

        r = self.recipe
        options: dict[str, Any] = {
            "val_fraction": r.val_fraction,
            "batch_size": r.batch_size,
            "standardize": r.standardize,
            "seed": seed,
        }
        try:
            if self.frame is not None:
                target = r.target or str(self.frame.columns[-1])
                with warnings.catch_warnings():
                    # The command says it itself (dropped_note), in one line.
                    warnings.simplefilter("ignore", UserWarning)
                    data = FidelityData.from_dataframe(self.frame, target=target, **options)
            else:
                data = FidelityData(self.X, self.y, **options)
        except (TypeError, ValueError) as exc:
            raise CliError(f"DATA {self.name!r} cannot be used: {one_line(str(exc))}") from exc
        if data.task != "classification":
            raise CliError(
                f"DATA {self.name!r} has a continuous target {r.target or 'y'!r}; the llp "
                "command tunes classifiers (integer, string or bool labels). Use the Python "
                "API (MetaProbing with an MSE loss and objective='val_loss') for regression."
            )
        return data


def dropped_note(data: FidelityData) -> str | None:
    """What a command says when identifier-like text columns were left out."""
    if not data.dropped_columns:
        return None
    from llp.data._fidelity_data import MAX_CATEGORIES

    return (
        f"left out {len(data.dropped_columns)} text column(s) with more than "
        f"{MAX_CATEGORIES} distinct values (identifier-like): "
        + ", ".join(map(repr, data.dropped_columns))
    )


def slug(text: str) -> str:
    """A short lowercase name usable in study names: ``"My Data.csv"`` -> ``"my-data"``."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:40] or "data"


def load_data(spec: str, *, target: str | None = None, family: str = "auto") -> LoadedData:
    """Read ``DATA`` (a built-in name or a CSV/Parquet/NPZ path) and pick the family.

    Raises
    ------
    CliError
        For a missing file, an unknown built-in name or suffix, an unreadable file, an
        unknown ``--target``, or a family that does not fit the data's shape.
    """
    if family not in ("auto", *FAMILIES):
        choices = ", ".join(repr(f) for f in ("auto", *FAMILIES))
        raise CliError(f"The '--family' option must be one of {choices}. Got {family!r} instead.")
    if spec in BUILTIN_DATASETS:
        if target is not None:
            raise CliError(
                f"The '--target' option does not apply to the built-in dataset {spec!r} "
                "(its labels are known). Leave it out."
            )
        X, y = BUILTIN_DATASETS[spec][1]()
        chosen = _family_for(X, family, spec)
        return LoadedData(
            name=spec,
            recipe=DataRecipe(data=spec, target=None, family=chosen),
            description=_describe_arrays(spec, X, y),
            X=_shaped_for(X, chosen),
            y=y,
        )
    path = Path(spec).expanduser()
    if not path.exists():
        builtins = ", ".join(BUILTIN_DATASETS)
        raise CliError(
            f"DATA {spec!r} is neither an existing file nor a built-in dataset "
            f"(built-ins: {builtins})."
        )
    if path.is_dir():
        raise CliError(
            f"DATA {spec!r} is a directory; give a CSV, Parquet or NPZ file (image folders: "
            "save the images as an NPZ file with arrays X (n, channels, height, width) and y)."
        )
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise CliError(
            f"DATA {spec!r} has the suffix {path.suffix!r}; llp reads .csv, .tsv, .parquet "
            "and .npz files."
        )
    name = slug(path.stem)
    if kind == "npz":
        X, y, used = _read_npz(path, target)
        chosen = _family_for(X, family, spec)
        return LoadedData(
            name=name,
            recipe=DataRecipe(data=str(path.resolve()), target=used, family=chosen),
            description=_describe_arrays(path.name, X, y),
            X=_shaped_for(X, chosen),
            y=y,
        )
    frame = _read_table(path, kind)
    column = _target_column(frame, target, spec)
    if family == "cnn":
        raise CliError(
            f"The '--family' option 'cnn' needs image or signal arrays (an NPZ file with X "
            f"of shape (n, channels, ...)); DATA {spec!r} is a table. Use --family mlp or "
            "resmlp."
        )
    n_classes = frame[column].nunique()
    return LoadedData(
        name=name,
        recipe=DataRecipe(
            data=str(path.resolve()),
            target=column,
            family="resmlp" if family == "resmlp" else "mlp",
        ),
        description=(
            f"{path.name}: {len(frame)} rows, {frame.shape[1] - 1} feature columns, "
            f"target {column!r} with {n_classes} distinct values"
        ),
        frame=frame,
    )


def load_recipe(recipe: DataRecipe) -> LoadedData:
    """Read the data of a stored recipe again (``llp report``)."""
    return load_data(recipe.data, target=recipe.target, family=recipe.family)


# --------------------------------------------------------------------------- helpers
def _describe_arrays(name: str, X: np.ndarray, y: np.ndarray) -> str:
    shape = "x".join(str(s) for s in X.shape[1:])
    return f"{name}: {X.shape[0]} examples of shape {shape}, {len(np.unique(y))} classes"


def _family_for(X: np.ndarray, family: str, spec: str) -> Family:
    if X.ndim < 2:
        raise CliError(
            f"DATA {spec!r} has features of shape {X.shape}; expected (n_samples, n_features) "
            "or (n_samples, channels, ...)."
        )
    if family == "auto":
        return "mlp" if X.ndim == 2 else "cnn"
    if family == "cnn" and X.ndim == 2:
        raise CliError(
            f"The '--family' option 'cnn' needs image or signal arrays of shape (n, channels, "
            f"length) or (n, [channels,] height, width); DATA {spec!r} has shape {X.shape}. "
            "Use --family mlp or resmlp, or the built-in 'digits-images'."
        )
    if family == "cnn":
        return "cnn"
    return "resmlp" if family == "resmlp" else "mlp"


def _shaped_for(X: np.ndarray, family: Family) -> np.ndarray:
    """The arrays as the family reads them. ``mlp`` and ``resmlp``: one flat row per
    example. ``cnn``: (n, H, W) grayscale images get their channel axis, (n, 1, H, W);
    (n, 1, L) signals and (n, C, H, W) images are kept as they are."""
    if family in TABLE_FAMILIES:
        return X.reshape(X.shape[0], -1)
    if X.ndim == 3 and X.shape[1] != 1:
        return X[:, None, :, :]
    return X


def _too_large(path: Path, size: int, what: str) -> CliError:
    advice = "Subsample it, or use the Python API with a dataset_fn that streams it."
    name = f"DATA {str(path)!r}"
    return CliError(too_large(name, size, what, MAX_INPUT_BYTES, "llp tune reads", advice))


def _read_table(path: Path, kind: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if kind == "parquet":
            try:
                importlib.import_module("pyarrow")
            except ImportError as exc:
                raise CliError(
                    f"Reading the Parquet file {str(path)!r} needs pyarrow. Install it with: "
                    'pip install "llp[parquet]"'
                ) from exc
            size = parquet_size(path)
            if size > MAX_INPUT_BYTES:
                raise _too_large(path, size, "uncompressed columns")
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            frame = pd.read_csv(path, sep=sep)
    except CliError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"DATA {str(path)!r} cannot be read: {one_line(str(exc))}") from exc
    if frame.shape[0] == 0 or frame.shape[1] < 2:
        raise CliError(
            f"DATA {str(path)!r} must hold a header row, at least 4 rows and at least two "
            f"columns (features and a label). Got {frame.shape[0]} rows and "
            f"{frame.shape[1]} columns."
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _target_column(frame: pd.DataFrame, target: str | None, spec: str) -> str:
    columns = list(frame.columns)
    if target is not None:
        if target not in columns:
            shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
            raise CliError(
                f"The '--target' column {target!r} is not in DATA {spec!r}. Columns: {shown}."
            )
        return target
    for name in TARGET_NAMES:
        for column in columns:
            if column.lower() == name:
                return column
    return columns[-1]


def _read_npz(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise CliError(
            f"DATA {str(path)!r} is not a readable NPZ file of numeric arrays: {one_line(str(exc))}"
        ) from exc
    if size > MAX_INPUT_BYTES:
        raise _too_large(path, size, "arrays once decompressed")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CliError(
            f"DATA {str(path)!r} is not a readable NPZ file of numeric arrays: {one_line(str(exc))}"
        ) from exc
    keys = list(arrays)
    if target is not None:
        if target not in arrays:
            raise CliError(
                f"The '--target' array {target!r} is not in DATA {str(path)!r}. "
                f"Arrays: {', '.join(keys)}."
            )
        label_key = target
    else:
        found = [k for k in _NPZ_LABELS if k in arrays]
        if not found:
            raise CliError(
                f"DATA {str(path)!r} has no label array named one of {', '.join(_NPZ_LABELS)}; "
                f"name it with --target. Arrays: {', '.join(keys)}."
            )
        label_key = found[0]
    rest = [k for k in keys if k != label_key]
    named = [k for k in _NPZ_FEATURES if k in rest]
    if named:
        feature_key = named[0]
    elif len(rest) == 1:
        feature_key = rest[0]
    else:
        raise CliError(
            f"DATA {str(path)!r} must hold one feature array (named X) besides the labels "
            f"{label_key!r}. Arrays: {', '.join(keys)}."
        )
    X, y = arrays[feature_key], arrays[label_key]
    if X.dtype.kind not in "biuf":
        raise CliError(
            f"The feature array {feature_key!r} of DATA {str(path)!r} must be numeric. "
            f"Got dtype {X.dtype}."
        )
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise CliError(
            f"DATA {str(path)!r} must hold X of shape (n, ...) and y of shape (n,). Got "
            f"{feature_key} {X.shape} and {label_key} {y.shape}."
        )
    return X.astype(np.float64, copy=False), y, label_key


__all__ = [
    "BATCH_SIZE",
    "BUILTIN_DATASETS",
    "TARGET_NAMES",
    "VAL_FRACTION",
    "DataRecipe",
    "LoadedData",
    "load_data",
    "load_recipe",
    "slug",
]
