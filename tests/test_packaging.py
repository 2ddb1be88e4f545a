"""The dependency floors pyproject.toml declares are the versions CI tests with."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
#: Extras whose floors the minimal-versions environment installs (``make test-min``).
TESTED_EXTRAS = ("postgres", "parquet", "yaml", "dask")
#: Packages an extra pulls in at its parent's version (``psycopg[binary]``,
#: ``dask[distributed]``).
COMPANIONS = {"psycopg-binary": "psycopg", "distributed": "dask"}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def floors() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in TESTED_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    out = {}
    for text in requirements:
        requirement = Requirement(text)
        (spec,) = [s for s in requirement.specifier if s.operator == ">="]
        out[_name(requirement.name)] = Version(spec.version)
    return out


def pins() -> dict[str, Version]:
    out = {}
    for line in (ROOT / ".ci" / "minimal-versions.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[_name(name)] = Version(version)
    return out


def test_every_declared_floor_is_pinned_for_the_minimal_versions_run() -> None:
    declared, pinned = floors(), pins()
    # torch: only the CPU build of 2.13.0 can be installed on the CI machines.
    untested = set(declared) - set(pinned)
    assert untested == {"torch"}
    for name, floor in declared.items():
        if name in pinned:
            assert pinned[name] == floor, f"{name}: pinned {pinned[name]}, declared >= {floor}"
    for companion, parent in COMPANIONS.items():
        assert pinned[companion] == pinned[parent]
    assert set(pinned) == (set(declared) - untested) | set(COMPANIONS)
