"""Search spaces on the command line: the default of a model family, or a TOML/YAML/JSON
file in the format of :meth:`llp.space.SearchSpace.to_dict`.

Example ``space.toml``::

    [[hyperparameters]]
    name = "lr"
    type = "float"
    low = 1e-4
    high = 0.3
    log = true

    [[hyperparameters]]
    name = "width"
    type = "int"
    low = 32
    high = 256
    log = true

    [[hyperparameters]]
    name = "optimizer"
    type = "categorical"
    choices = ["sgd", "adam"]
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llp.cli._errors import CliError, one_line
from llp.space import Categorical, SearchSpace

#: Hyperparameters the ``mlp`` and ``cnn`` families read (see llp.knowledge).
FAMILY_READS = ("lr", "weight_decay", "width", "dropout", "optimizer", "batch_size")
#: Of those, the ones a space must provide (the others have defaults: no weight decay,
#: no dropout, the data's batch size).
FAMILY_NEEDS = ("lr", "width", "optimizer")
OPTIMIZERS = ("sgd", "adam")

#: Where a fresh search starts, besides the meta-model's suggestions: Adam at a learning
#: rate of 1e-3, the usual first try. Used only when it lies in the space.
STARTING_CONFIG: Mapping[str, Any] = {
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "width": 64,
    "dropout": 0.1,
    "optimizer": "adam",
}


def default_space() -> SearchSpace:
    """The space of the shipped knowledge (both families): lr and weight decay (log),
    width (log), dropout, optimizer (SGD with momentum or Adam)."""
    from llp.knowledge import DEFAULT_SPACE

    return DEFAULT_SPACE


def read_space_file(path: str | Path) -> SearchSpace:
    """Read a TOML, YAML or JSON space file (see :func:`_read_space_file`); a file nested
    past Python's recursion limit is a one-line error, not a traceback."""
    try:
        return _read_space_file(path)
    except RecursionError:
        raise CliError(
            f"The '--space' file {str(path)!r} is nested too deeply to be a search space."
        ) from None


def _read_space_file(path: str | Path) -> SearchSpace:
    """Read a TOML, YAML or JSON space file and check it against the model families.

    Raises
    ------
    CliError
        Naming the file and what is wrong: missing, unknown suffix, not parseable,
        malformed description, or hyperparameters the families cannot use.
    """
    file = Path(path).expanduser()
    where = f"The space file {str(path)!r}"
    if not file.is_file():
        raise CliError(f"{where} does not exist (the '--space' option needs a file).")
    suffix = file.suffix.lower()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{where} cannot be read: {one_line(str(exc))}") from exc
    content: Any
    if suffix == ".toml":
        import tomllib

        try:
            content = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CliError(f"{where} is not valid TOML: {one_line(str(exc))}") from exc
    elif suffix in (".yaml", ".yml"):
        try:
            yaml = importlib.import_module("yaml")
        except ImportError as exc:
            raise CliError(
                f"Reading the YAML space file {str(path)!r} needs PyYAML. Install it with: "
                'pip install "llp[yaml]", or write the space as TOML.'
            ) from exc
        try:
            content = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CliError(f"{where} is not valid YAML: {one_line(str(exc))}") from exc
    elif suffix == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"{where} is not valid JSON: {one_line(str(exc))}") from exc
    else:
        raise CliError(f"{where} must end in .toml, .yaml, .yml or .json. Got {suffix!r}.")
    if isinstance(content, Mapping) and isinstance(content.get("space"), Mapping):
        content = content["space"]  # a [space] table inside a larger config file
    try:
        space = SearchSpace.from_dict(content)
    except (TypeError, ValueError) as exc:
        raise CliError(
            f"{where} is not a valid search space: {one_line(str(exc))} (expected a list "
            "of [[hyperparameters]] with name, type and low/high/log or choices)."
        ) from exc
    check_space_for_families(space, where)
    return space


def check_space_for_families(space: SearchSpace, where: str) -> None:
    """The families build models from ``lr``, ``width``, ``optimizer`` (required),
    ``weight_decay``, ``dropout`` and ``batch_size`` (optional); refuse anything else
    rather than silently ignore it."""
    unknown = [n for n in space.names if n not in FAMILY_READS]
    if unknown:
        raise CliError(
            f"{where} names {', '.join(map(repr, unknown))}, which the mlp, resmlp and cnn "
            f"families do not read (they read {', '.join(FAMILY_READS)})."
        )
    missing = [n for n in FAMILY_NEEDS if n not in space.names]
    if missing:
        raise CliError(
            f"{where} must define {', '.join(map(repr, missing))} (the families need "
            f"{', '.join(FAMILY_NEEDS)})."
        )
    hp = space["optimizer"]
    choices = hp.choices if isinstance(hp, Categorical) else ()
    if not isinstance(hp, Categorical) or not set(choices) <= set(OPTIMIZERS):
        raise CliError(
            f"{where} must make 'optimizer' categorical with choices among "
            f"{', '.join(map(repr, OPTIMIZERS))}. Got {choices or hp!r}."
        )
    for name, low in (("lr", 0.0), ("weight_decay", 0.0), ("width", 1), ("batch_size", 1)):
        if name in space.names:
            bound = getattr(space[name], "low", None)
            if bound is None or bound < low or (name == "lr" and bound <= 0):
                rule = "> 0" if name == "lr" else f">= {low}"
                raise CliError(
                    f"{where} must make {name!r} numeric with a lower bound {rule}. "
                    f"Got {space[name]!r}."
                )
    if "dropout" in space.names:
        hp_d = space["dropout"]
        low_d, high_d = getattr(hp_d, "low", None), getattr(hp_d, "high", None)
        if low_d is None or high_d is None or low_d < 0 or high_d >= 1:
            raise CliError(f"{where} must make 'dropout' numeric within [0, 1). Got {hp_d!r}.")


def starting_configs(space: SearchSpace) -> list[dict[str, Any]]:
    """The configuration a search starts from: :data:`STARTING_CONFIG` restricted to the
    space when it is legal there, else the space's first seeded sample."""
    candidate = {k: v for k, v in STARTING_CONFIG.items() if k in space.names}
    try:
        return [space.validate(candidate)]
    except (TypeError, ValueError):
        return space.sample(1, seed=0)


__all__ = [
    "FAMILY_NEEDS",
    "FAMILY_READS",
    "STARTING_CONFIG",
    "check_space_for_families",
    "default_space",
    "read_space_file",
    "starting_configs",
]
