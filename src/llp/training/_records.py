from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, overload

from llp._checks import check_fraction, check_int

Objective = Literal["val_accuracy", "val_loss"]

#: How the failure reason of an evaluation whose worker was lost begins (a process that
#: died, a Dask worker that left). The loss is the infrastructure's, not the
#: configuration's: a resumed study runs such an evaluation again, and its new result
#: replaces the stored failure (:func:`lost_worker`).
WORKER_LOST = "worker lost: "


class EvaluationStatus(enum.Enum):
    """State of one evaluation (one configuration trained at one fidelity)."""

    COMPLETE = "complete"
    FAILED = "failed"

    def is_finished(self) -> bool:
        """Both states are final: a finished evaluation is never modified."""
        return True


def lost_worker(status: EvaluationStatus | str, failure_reason: str | None) -> bool:
    """Whether an evaluation failed only because its worker was lost."""
    failed = EvaluationStatus(status) is EvaluationStatus.FAILED
    return failed and (failure_reason or "").startswith(WORKER_LOST)


@dataclass(frozen=True, order=True)
class Fidelity:
    """How much a configuration is trained: a share of the training pool and a number of
    epochs over it.

    Its :attr:`cost` is measured in full-data-epoch equivalents (``fraction * epochs``),
    the unit in which llp and every baseline count budgets.
    """

    fraction: float
    epochs: int

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "fraction", check_fraction("fraction", self.fraction, owner="Fidelity")
        )
        object.__setattr__(
            self, "epochs", check_int("epochs", self.epochs, min_value=1, owner="Fidelity")
        )

    @property
    def cost(self) -> float:
        """Planned cost in full-data-epoch equivalents."""
        return self.fraction * self.epochs


@dataclass(frozen=True)
class EpochRecord:
    """One point of a learning curve, recorded at the end of an epoch.

    ``val_accuracy`` is ``None`` when the task has no accuracy (regression).
    ``seconds`` is the wall time of the epoch's training and validation.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "seconds": self.seconds,
        }


#: The fields of :class:`EpochRecord`, in order: the columns of a :class:`Curve`.
_CURVE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EpochRecord))


class Curve(Sequence[EpochRecord]):
    """A learning curve: an immutable sequence of :class:`EpochRecord`, stored as one
    column per field.

    :class:`EvaluationResult` keeps its curve in this form (a knowledge file holds
    hundreds of thousands of curve points; one object per point made reading it slow).
    Indexing and iterating give :class:`EpochRecord` s; a curve equals any sequence of
    the same records (a tuple of them included). :meth:`column` reads one field
    without building the records.

    Parameters
    ----------
    records : iterable of EpochRecord, default=()
        Anything with the fields of :class:`EpochRecord` as attributes.

    Examples
    --------
    >>> curve = Curve([EpochRecord(1, 0.9, 0.8, 0.6, 0.1), EpochRecord(2, 0.5, 0.6, 0.7, 0.1)])
    >>> len(curve), curve[-1].val_accuracy, curve.column("val_loss")
    (2, 0.7, (0.8, 0.6))
    >>> curve == (EpochRecord(1, 0.9, 0.8, 0.6, 0.1), EpochRecord(2, 0.5, 0.6, 0.7, 0.1))
    True
    """

    __slots__ = ("_columns",)

    #: The columns, in order: the fields of :class:`EpochRecord`.
    FIELDS: ClassVar[tuple[str, ...]] = _CURVE_FIELDS

    def __init__(self, records: Iterable[Any] = ()) -> None:
        points = tuple(records)
        self._columns = tuple(
            tuple(getattr(point, name) for point in points) for name in _CURVE_FIELDS
        )

    @classmethod
    def from_columns(
        cls,
        epoch: Sequence[int],
        train_loss: Sequence[float],
        val_loss: Sequence[float],
        val_accuracy: Sequence[float | None],
        seconds: Sequence[float],
    ) -> Curve:
        """A curve from its columns, one per :class:`EpochRecord` field, in their order
        (as stores and knowledge files keep curves). Raises ``ValueError`` when their
        lengths differ."""
        columns = (
            tuple(epoch),
            tuple(train_loss),
            tuple(val_loss),
            tuple(val_accuracy),
            tuple(seconds),
        )
        if len({len(c) for c in columns}) > 1:
            raise ValueError(
                "The columns of a learning curve must have one length. Got lengths "
                f"{[len(c) for c in columns]} for {list(_CURVE_FIELDS)}."
            )
        curve = cls.__new__(cls)
        curve._columns = columns
        return curve

    def column(self, name: str) -> tuple[Any, ...]:
        """One field of every point, e.g. ``curve.column("val_loss")``."""
        try:
            return self._columns[_CURVE_FIELDS.index(name)]
        except ValueError:
            raise ValueError(
                f"The 'name' parameter must be one of {list(_CURVE_FIELDS)}. Got {name!r}."
            ) from None

    def __len__(self) -> int:
        return len(self._columns[0])

    @overload
    def __getitem__(self, index: int) -> EpochRecord: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[EpochRecord, ...]: ...

    def __getitem__(self, index: int | slice) -> EpochRecord | tuple[EpochRecord, ...]:
        if isinstance(index, slice):
            return tuple(map(EpochRecord, *(c[index] for c in self._columns)))
        return EpochRecord(*(c[index] for c in self._columns))

    def __iter__(self) -> Iterator[EpochRecord]:
        return map(EpochRecord, *self._columns)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Curve):
            return self._columns == other._columns
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._columns)

    def __repr__(self) -> str:
        return f"Curve({list(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Curve.from_columns, self._columns)


_EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    # A read-only view is kept as given, so that the many results of one configuration
    # (a knowledge file holds thousands) can share one; anything else is copied.
    if type(value) is MappingProxyType:
        return value
    return MappingProxyType(dict(value)) if value else _EMPTY_MAPPING


@dataclass(frozen=True)
class EvaluationResult:
    """The record of one configuration trained at one fidelity. Never mutated.

    Attributes
    ----------
    config : Mapping
        The configuration, as a read-only view (a ``types.MappingProxyType`` is kept as
        given, so results of one configuration can share it; any other mapping is
        copied).
    fidelity : Fidelity
        Data fraction and epochs it was trained with.
    status : EvaluationStatus
        ``COMPLETE`` or ``FAILED``.
    curve : Curve
        Per-epoch learning curve (partial for a failed run). Any sequence of
        :class:`EpochRecord` is accepted and kept as a :class:`Curve`.
    score : float or None
        Higher is better: the final validation accuracy, or minus the final validation
        loss when the objective is ``"val_loss"``. ``None`` for a failed evaluation.
    objective : {"val_accuracy", "val_loss"}
        What ``score`` measures.
    cost : float
        Compute spent, in full-data-epoch equivalents (``fraction * epochs run``).
    seconds : float
        Wall time of the whole evaluation (model building, training, validation, probes).
    train_seconds : float
        Wall time of the training loops alone.
    n_train : int
        Number of training examples used at this fidelity.
    seed : int
        Seed the model initialisation and the batch order came from.
    failure_reason : str or None
        Why a failed evaluation failed (divergence, an exception in user code...).
    traceback : str or None
        The traceback of an exception, when there was one.
    landscape : Mapping
        Loss-landscape features measured after training (empty unless requested).
    probe_cost : float
        Compute of those landscape probes, in full-data-epoch equivalents (forward+backward
        passes over the probe set, divided by the size of the training pool). Not part of
        ``cost``, which counts training alone, so schedules stay comparable; studies
        report both.
    """

    config: Mapping[str, Any]
    fidelity: Fidelity
    status: EvaluationStatus
    curve: Sequence[EpochRecord]
    score: float | None
    objective: Objective
    cost: float
    seconds: float
    train_seconds: float
    n_train: int
    seed: int
    failure_reason: str | None = None
    traceback: str | None = None
    landscape: Mapping[str, float] = field(default_factory=dict)
    probe_cost: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", _frozen_mapping(self.config))
        object.__setattr__(self, "landscape", _frozen_mapping(self.landscape))
        if not isinstance(self.curve, Curve):
            object.__setattr__(self, "curve", Curve(self.curve))
        if self.status is EvaluationStatus.COMPLETE and (
            self.score is None or not math.isfinite(self.score)
        ):
            raise ValueError("A COMPLETE evaluation needs a finite score.")
        if self.status is EvaluationStatus.FAILED and not self.failure_reason:
            raise ValueError("A FAILED evaluation needs a failure_reason.")

    def __reduce__(self) -> tuple[Any, ...]:
        # A mappingproxy cannot be pickled; rebuild from plain dicts, so that results
        # come back from worker processes.
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["config"] = dict(self.config)
        values["landscape"] = dict(self.landscape)
        return (functools.partial(type(self), **values), ())

    @classmethod
    def not_measured(
        cls,
        config: Mapping[str, Any],
        fidelity: Fidelity,
        *,
        objective: Objective,
        seed: int,
        reason: str,
    ) -> EvaluationResult:
        """The ``FAILED`` record of an evaluation that measured nothing (no curve, no
        cost): e.g. one whose workers were lost too often."""
        return cls(
            config=config,
            fidelity=fidelity,
            status=EvaluationStatus.FAILED,
            curve=(),
            score=None,
            objective=objective,
            cost=0.0,
            seconds=0.0,
            train_seconds=0.0,
            n_train=0,
            seed=seed,
            failure_reason=reason,
        )

    @property
    def ok(self) -> bool:
        return self.status is EvaluationStatus.COMPLETE

    @property
    def worker_lost(self) -> bool:
        """Failed only because the worker running it was lost (see :data:`WORKER_LOST`)."""
        return lost_worker(self.status, self.failure_reason)

    @property
    def final_val_loss(self) -> float | None:
        return self.curve[-1].val_loss if self.curve else None

    @property
    def final_val_accuracy(self) -> float | None:
        return self.curve[-1].val_accuracy if self.curve else None


def tie_loss(result: EvaluationResult) -> float:
    """What decides between equal scores: the final validation loss, lower first
    (``inf`` when there is none).

    An accuracy measured on ``n`` validation examples moves in steps of ``1 / n``, so on
    a small validation split configurations often tie on it exactly (a majority-class
    predictor and a real model, say) while their losses still tell them apart: choosing
    among equal accuracies by the lower loss, rather than by trial id, chose better on
    most small tasks measured (BENCHMARKS.md, "Ties between equal accuracies"). For a
    loss objective the score is the loss, so nothing changes."""
    loss = result.final_val_loss
    return float(loss) if loss is not None and math.isfinite(loss) else math.inf


def rank_key(result: EvaluationResult, trial_id: int) -> tuple[float, float, int]:
    """Sort key of trial ``trial_id``'s ``result``, best first: the higher score, then the
    lower validation loss (:func:`tie_loss`), then the lower trial id. Everything that
    orders evaluations by score sorts by it (answers, promotions, kept weights)."""
    return (-float(result.score or 0.0), tie_loss(result), trial_id)
