"""Knowledge that ships with llp, so a fresh install already predicts good hyperparameters.

``corpus.jsonl.gz`` (next to this module; corpus v2 since 2026-12-06) holds one
successive-halving study per dataset and model family: a fixed random design of 128
configurations of :data:`DEFAULT_SPACE`, each trained with two seeds on data fractions
1/8, 1/4, 1/2 and 1 of real datasets (KEEL, scikit-learn, MNIST-1D), the better half of
them promoted at each fraction, with learning curves and, on all of the data, cheap-tier
loss-landscape features. Three model families: :func:`make_mlp` and :func:`make_resmlp`
for tables, :func:`make_cnn` for signals and images. :func:`load_shipped_experiences`
turns it into the :class:`llp.meta.Experience` records :class:`llp.meta.MetaModelTrainer`
learns from.

>>> from llp.knowledge import DEFAULT_SPACE, load_shipped_experiences
>>> from llp.meta import MetaModelTrainer
>>> prior = load_shipped_experiences(exclude_groups=["sklearn-digits"])
>>> trainer = MetaModelTrainer(DEFAULT_SPACE).add(prior).fit()  # doctest: +SKIP

The file format (gzip JSON Lines, no pickles, every record checked on reading) is
described in :mod:`llp.knowledge._corpus`.

Rebuilding the shipped corpus
-----------------------------
From the repository root, with the development install (``make setup``)::

    .venv/bin/python benchmarks/build_corpus.py

It runs the design on each of 87 datasets (62 groups; 131 studies: 80 tables with the
MLP, 44 with the residual MLP, 7 signal and image sets with the CNN) in two worker
processes, writes every evaluation into the knowledge base
``benchmarks/results/corpus-v2.db`` (resumable: finished studies are skipped; a fresh
clone first restores the studies of the committed file) and distils it into
``src/llp/knowledge/corpus.jsonl.gz`` (8.5 MB, 62,880 evaluations). ``--quick`` runs a
two-dataset smoke build into ``benchmarks/results/corpus-quick.*``; ``--distill-only``
rewrites the file from the knowledge base (byte-identical records; the header keeps the
build's record); ``--design v1`` builds the corpus shipped until then (24 configurations,
every one on every fraction, one seed) into ``benchmarks/results/corpus-v1.jsonl.gz``.

Measured build (the header's ``build`` record): 2432 s wall on the 2-core development
machine, 3727 s of worker CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llp.knowledge._corpus import (
    DESIGN_SCHEDULER,
    FORMAT_VERSION,
    Corpus,
    ShippedDataset,
    distill,
    read_corpus,
    select_experiences,
)
from llp.knowledge._families import (
    DEFAULT_SPACE,
    SGD_MOMENTUM,
    make_cnn,
    make_mlp,
    make_optimizer,
    make_resmlp,
)
from llp.knowledge._prior import (
    FEATURE_FLAGS,
    PRIOR_KINDS,
    Prior,
    PriorKind,
    build_prior,
    prior_flags,
)

if TYPE_CHECKING:
    from llp.meta import Experience

#: The knowledge file installed with llp.
SHIPPED_CORPUS_PATH = Path(__file__).resolve().with_name("corpus.jsonl.gz")


def load_shipped_experiences(
    *,
    exclude_groups: Iterable[str] = (),
    exclude_datasets: Iterable[str] = (),
) -> list[Experience]:
    """The evaluations of the shipped corpus as meta-model training records.

    The file is read and checked once per process (later calls reuse it).

    Parameters
    ----------
    exclude_groups : iterable of str, default=()
        Dataset groups to leave out, e.g. the group of the dataset being searched, so
        the meta-model never sees its test dataset in disguise.
    exclude_datasets : iterable of str, default=()
        Datasets to leave out, by fingerprint or by name.

    Returns
    -------
    list of Experience
        One per evaluation (failed ones included); ``dataset`` is the fingerprint.

    Raises
    ------
    FileNotFoundError
        If the corpus was not installed with llp.
    ValueError
        If the file is malformed (the message names it and the bad record).

    Examples
    --------
    >>> experiences = load_shipped_experiences(exclude_groups=["mnist1d"])
    >>> {e.model_family for e in experiences} >= {"mlp", "cnn"}
    True
    """
    return select_experiences(
        read_corpus(SHIPPED_CORPUS_PATH),
        exclude_groups=exclude_groups,
        exclude_datasets=exclude_datasets,
    )


def shipped_datasets() -> list[dict[str, Any]]:
    """The datasets of the shipped corpus: ``fingerprint``, ``name``, ``group``,
    ``n_samples``, ``source`` and ``meta_features``, as plain dicts (copies)."""
    return [d.as_dict() for d in read_corpus(SHIPPED_CORPUS_PATH).datasets]


__all__ = [
    "DEFAULT_SPACE",
    "DESIGN_SCHEDULER",
    "FEATURE_FLAGS",
    "FORMAT_VERSION",
    "PRIOR_KINDS",
    "SGD_MOMENTUM",
    "SHIPPED_CORPUS_PATH",
    "Corpus",
    "Prior",
    "PriorKind",
    "ShippedDataset",
    "build_prior",
    "distill",
    "load_shipped_experiences",
    "make_cnn",
    "make_mlp",
    "make_optimizer",
    "make_resmlp",
    "prior_flags",
    "read_corpus",
    "select_experiences",
    "shipped_datasets",
]
