from __future__ import annotations

import math
import time
import traceback as tb
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llp._checks import check_int, check_real
from llp.data import FidelityData
from llp.training._devices import evaluation_device, is_out_of_memory, release_memory
from llp.training._records import (
    EpochRecord,
    EvaluationResult,
    EvaluationStatus,
    Fidelity,
    Objective,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

ModelFn = Callable[[Mapping[str, Any]], "nn.Module"]
OptimizerFn = Callable[["nn.Module", Mapping[str, Any]], "torch.optim.Optimizer"]
DatasetFn = Callable[[float], tuple[Iterable[Any], Iterable[Any]]]

#: Validation runs in batches of this many examples, without gradients.
VAL_BATCH_SIZE = 2048
#: Default number of examples in the fixed probe set the landscape measurements use.
PROBE_SIZE = 128


def probe_cost_bound(n_train: int, probe_size: int = PROBE_SIZE) -> float:
    """The most the cheap landscape tier can cost one evaluation, in full-data-epoch
    equivalents: ``CHEAP_TIER_MAX_COST_FB`` forward+backward passes over a probe set of
    ``min(probe_size, n_train)`` of the ``n_train`` training examples.

    >>> probe_cost_bound(1280)
    2.0
    """
    from llp.landscape import CHEAP_TIER_MAX_COST_FB

    n_train = max(int(n_train), 1)
    return CHEAP_TIER_MAX_COST_FB * min(probe_size, n_train) / n_train


class DivergedError(Exception):
    """Raised inside a training run whose loss is no longer finite or has exploded."""


def trial_seed(study_seed: int, trial_id: int) -> int:
    """The seed of one trial, derived from the study's seed (stable across processes)."""
    state = np.random.SeedSequence([int(study_seed) & 0xFFFFFFFF, int(trial_id)])
    return int(state.generate_state(1, dtype=np.uint32)[0])


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU."""
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter must be 'auto' or a torch device such as 'cpu' or "
            f"'cuda:0'. Got {device!r} instead."
        ) from exc
    # Checked here, once: otherwise every evaluation would fail the same way.
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"The 'device' parameter is {device!r}, but this torch build "
                f"({torch.__version__}) sees no CUDA device. Use 'auto' or 'cpu', or "
                "install a CUDA build of torch on a machine with a GPU."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"The 'device' parameter is {device!r}, but there are only "
                f"{torch.cuda.device_count()} CUDA device(s) (0 to "
                f"{torch.cuda.device_count() - 1})."
            )
    return resolved


class Trainer:
    """Trains one configuration at one fidelity and records its learning curve.

    The trainer is the objective every scheduler evaluates. It never lets a bad
    configuration crash a study: NaN, inf or exploding loss and exceptions raised by
    ``model_fn``, ``optimizer_fn`` or the forward/backward pass become a ``FAILED``
    :class:`EvaluationResult` with the reason and the traceback. Mistakes in the data
    contract (a ``dataset_fn`` that does not return two loaders) are raised at once,
    since every evaluation would fail the same way.

    Parameters
    ----------
    model_fn : callable
        ``model_fn(config) -> nn.Module``.
    optimizer_fn : callable
        ``optimizer_fn(model, config) -> torch.optim.Optimizer``.
    criterion : nn.Module
        The loss, e.g. ``nn.CrossEntropyLoss()`` (mean reduction).
    data : FidelityData or callable
        Either llp-held tensors (fast path: batches by index slicing) or a
        ``dataset_fn(fraction) -> (train_loader, val_loader)``.
    device : str or torch.device, default="auto"
    objective : {"auto", "val_accuracy", "val_loss"}, default="auto"
        ``"auto"`` uses accuracy for classification data and loss otherwise.
    divergence_factor : float or None, default=100.0
        An epoch whose mean training loss exceeds this multiple of the loss of the first
        batch before any update counts as diverged. ``None`` only checks finiteness.
    measure_flatness : bool, default=False
        Attach the cheap tier of :mod:`llp.landscape` to every completed evaluation,
        measured on a fixed probe set (the same examples for every configuration).
    probe_size : int, default=128
        Examples in that probe set (fewer if the training pool is smaller).
    seed : int, default=0
        The study seed; each trial's seed derives from it and the trial id.
    """

    def __init__(
        self,
        model_fn: ModelFn,
        optimizer_fn: OptimizerFn,
        criterion: nn.Module | Callable[..., Any],
        data: FidelityData | DatasetFn,
        *,
        device: str | torch.device = "auto",
        objective: Literal["auto", "val_accuracy", "val_loss"] = "auto",
        divergence_factor: float | None = 100.0,
        measure_flatness: bool = False,
        probe_size: int = PROBE_SIZE,
        seed: int = 0,
    ) -> None:
        for name, fn in (("model_fn", model_fn), ("optimizer_fn", optimizer_fn)):
            if not callable(fn):
                raise TypeError(
                    f"The '{name}' parameter must be callable. Got {type(fn).__name__} instead."
                )
        if isinstance(criterion, type):
            raise TypeError(
                "The 'criterion' parameter must be a loss module instance such as "
                f"nn.CrossEntropyLoss(). Got the class {criterion.__name__} itself; add the "
                "parentheses."
            )
        if not callable(criterion):
            raise TypeError(
                "The 'criterion' parameter must be a loss module such as "
                f"nn.CrossEntropyLoss(). Got {type(criterion).__name__} instead."
            )
        if not callable(data):
            raise TypeError(
                "The 'dataset_fn' parameter must be a FidelityData or a callable "
                "dataset_fn(fraction) -> (train_loader, val_loader). "
                f"Got {type(data).__name__} instead."
            )
        if objective not in ("auto", "val_accuracy", "val_loss"):
            raise ValueError(
                "The 'objective' parameter must be one of 'auto', 'val_accuracy', 'val_loss'. "
                f"Got {objective!r} instead."
            )
        if divergence_factor is not None:
            check_real("divergence_factor", divergence_factor, low=1.0, low_inclusive=False)
        self.model_fn = model_fn
        self.optimizer_fn = optimizer_fn
        self.criterion = criterion
        self.data = data
        self.device = resolve_device(device)
        self.divergence_factor = divergence_factor
        self.measure_flatness = bool(measure_flatness)
        self.probe_size = check_int("probe_size", probe_size, min_value=1)
        self.seed = check_int("seed", seed)
        if objective == "auto":
            is_regression = isinstance(data, FidelityData) and data.task == "regression"
            objective = "val_loss" if is_regression else "val_accuracy"
        self.objective: Objective = objective
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pool_size: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The probe set is a cache on this process's device; a worker rebuilds it on its own.
        state = self.__dict__.copy()
        state["_probe"] = None
        return state

    # ------------------------------------------------------------------ public
    def evaluate(
        self, config: Mapping[str, Any], fidelity: Fidelity, *, trial_id: int = 0
    ) -> EvaluationResult:
        """Train ``config`` at ``fidelity`` and return the (never raising) record."""
        return self.fit(config, fidelity, trial_id=trial_id)[1]

    def fit(
        self, config: Mapping[str, Any], fidelity: Fidelity, *, trial_id: int = 0
    ) -> tuple[nn.Module | None, EvaluationResult]:
        """Like :meth:`evaluate`, but also return the trained model (``None`` on failure),
        e.g. to retrain the chosen configuration and score it on a test set."""
        import torch

        self._pin_device()
        seed = trial_seed(self.seed, trial_id)
        started = time.perf_counter()
        curve: list[EpochRecord] = []
        state: dict[str, Any] = {"train_seconds": 0.0, "epochs_run": 0, "n_train": 0}
        loaders = None if isinstance(self.data, FidelityData) else self._user_loaders(fidelity)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        landscape: dict[str, float] = {}
        probe_cost = 0.0

        failure: tuple[str, str | None] | None = None
        out_of_memory = False
        model: nn.Module | None = None
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                model = self._build_model(config)
                optimizer = self._build_optimizer(model, config)
                if loaders is None:
                    self._train_on_tensors(model, optimizer, config, fidelity, seed, curve, state)
                else:
                    self._train_on_loaders(model, optimizer, loaders, fidelity, curve, state)
                if self.measure_flatness:
                    landscape, probe_cost = self._landscape_or_nan(model, optimizer)
        except (DivergedError, _StageError) as exc:
            failure = (str(exc), None)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bad config must never crash the study
            if _wrapped_interrupt(exc):
                raise KeyboardInterrupt from exc
            stage = getattr(exc, "llp_stage", "training")
            out_of_memory = is_out_of_memory(exc)
            reason = f"{stage} raised {type(exc).__name__}: {exc}"
            if out_of_memory:
                reason += (
                    f" (out of memory on {self.device}; the evaluation's memory was released: "
                    "a smaller batch or model, or fewer evaluations per device, would fit)"
                )
            failure = (reason, tb.format_exc())
        if failure is not None:
            # Nothing of the failed run may outlive it: on a shared GPU, what the caching
            # allocator holds is memory the next evaluation cannot have.
            model = optimizer = None
            if out_of_memory:
                release_memory(self.device)
            return None, self._failed(config, fidelity, curve, state, seed, started, *failure)
        assert model is not None
        last = curve[-1]
        score = last.val_accuracy if self.objective == "val_accuracy" else -last.val_loss
        if score is None:
            raise ValueError(
                "objective='val_accuracy' needs a classification model whose output has one "
                "column per class; use objective='val_loss' for this model."
            )
        return model, EvaluationResult(
            config=config,
            fidelity=fidelity,
            status=EvaluationStatus.COMPLETE,
            curve=tuple(curve),
            score=float(score),
            objective=self.objective,
            cost=fidelity.fraction * state["epochs_run"],
            seconds=time.perf_counter() - started,
            train_seconds=state["train_seconds"],
            n_train=state["n_train"],
            seed=seed,
            landscape=landscape,
            probe_cost=probe_cost,
        )

    def validation_score(self, model: nn.Module, fidelity: Fidelity) -> float | None:
        """The score of a trained ``model`` on the validation split, as :meth:`fit`
        measures it after an evaluation at ``fidelity`` (``None`` if it cannot be
        measured: a model without an accuracy for ``objective='val_accuracy'``, or
        a non-finite loss)."""
        self._pin_device()
        model = model.to(self.device)
        if isinstance(self.data, FidelityData):
            _, _, X_val, y_val = self.data.tensors(self.device)
            val_loss, val_acc = self._validate_tensors(model, X_val, y_val)
        else:
            val_loader = self._user_loaders(fidelity)[1]
            val_loss, val_acc = self._validate_batches(
                model, (self._split_batch(b, "val_loader") for b in val_loader)
            )
        score = val_acc if self.objective == "val_accuracy" else -val_loss
        return None if score is None or not math.isfinite(score) else float(score)

    # ------------------------------------------------------------------ building
    def _pin_device(self) -> None:
        """In a worker process, move an unnumbered CUDA device to this worker's GPU
        (:func:`llp.training.evaluation_device`); the probe set follows it."""
        device = evaluation_device(self.device)
        if device != self.device:
            self.device = device
            self._probe = None

    def _build_model(self, config: Mapping[str, Any]) -> nn.Module:
        from torch import nn

        try:
            model = self.model_fn(dict(config))
        except Exception as exc:
            exc.llp_stage = "model_fn"  # type: ignore[attr-defined]
            raise
        if not isinstance(model, nn.Module):
            raise _StageError(
                "model_fn",
                f"model_fn returned {type(model).__name__}; it must return a torch.nn.Module",
            )
        return model.to(self.device)

    def _build_optimizer(self, model: nn.Module, config: Mapping[str, Any]) -> Any:
        import torch

        try:
            optimizer = self.optimizer_fn(model, dict(config))
        except Exception as exc:
            exc.llp_stage = "optimizer_fn"  # type: ignore[attr-defined]
            raise
        if not isinstance(optimizer, torch.optim.Optimizer) and not (
            hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")
        ):
            raise _StageError(
                "optimizer_fn",
                f"optimizer_fn returned {type(optimizer).__name__}; it must return a "
                "torch.optim.Optimizer",
            )
        return optimizer

    # ------------------------------------------------------------------ loops
    def _train_on_tensors(
        self,
        model: nn.Module,
        optimizer: Any,
        config: Mapping[str, Any],
        fidelity: Fidelity,
        seed: int,
        curve: list[EpochRecord],
        state: dict[str, Any],
    ) -> None:
        import torch

        assert isinstance(self.data, FidelityData)
        X_pool, y_pool, X_val, y_val = self.data.tensors(self.device)
        idx = torch.from_numpy(self.data.train_indices(fidelity.fraction)).to(self.device)
        X, y = X_pool.index_select(0, idx), y_pool.index_select(0, idx)
        n = int(X.shape[0])
        state["n_train"] = n
        batch_size = int(config.get("batch_size", self.data.batch_size))
        generator = torch.Generator(device="cpu").manual_seed(seed)
        initial: list[float] = []
        criterion = self.criterion
        for epoch in range(1, fidelity.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            # One gather per epoch, then contiguous slices: far cheaper than a
            # DataLoader collating every mini-batch example by example.
            perm = torch.randperm(n, generator=generator).to(self.device)
            Xp, yp = X.index_select(0, perm), y.index_select(0, perm)
            total = torch.zeros((), device=self.device)
            for start in range(0, n, batch_size):
                xb, yb = Xp[start : start + batch_size], yp[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(xb), yb)
                loss.backward()
                if not initial:
                    initial.append(float(loss.detach()))
                optimizer.step()
                total += loss.detach() * xb.shape[0]
            state["epochs_run"] = epoch
            train_loss = float(total) / n
            state["train_seconds"] += time.perf_counter() - t0
            self._check_divergence(train_loss, initial, epoch)
            val_loss, val_acc = self._validate_tensors(model, X_val, y_val)
            curve.append(
                EpochRecord(epoch, train_loss, val_loss, val_acc, time.perf_counter() - t0)
            )
            self._check_val(val_loss, epoch)

    def _train_on_loaders(
        self,
        model: nn.Module,
        optimizer: Any,
        loaders: tuple[Iterable[Any], Iterable[Any]],
        fidelity: Fidelity,
        curve: list[EpochRecord],
        state: dict[str, Any],
    ) -> None:
        import torch

        train_loader, val_loader = loaders
        initial: list[float] = []
        for epoch in range(1, fidelity.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            total = torch.zeros((), device=self.device)
            n = 0
            for batch in train_loader:
                xb, yb = self._split_batch(batch, "train_loader")
                xb, yb = xb.to(self.device), yb.to(self.device)
                optimizer.zero_grad(set_to_none=True)
                loss = self.criterion(model(xb), yb)
                loss.backward()
                if not initial:
                    initial.append(float(loss.detach()))
                optimizer.step()
                total += loss.detach() * xb.shape[0]
                n += int(xb.shape[0])
            if n == 0:
                raise _StageError("dataset_fn", "the train_loader yielded no batches")
            state["n_train"] = n
            state["epochs_run"] = epoch
            train_loss = float(total) / n
            state["train_seconds"] += time.perf_counter() - t0
            self._check_divergence(train_loss, initial, epoch)
            val_loss, val_acc = self._validate_batches(
                model, (self._split_batch(b, "val_loader") for b in val_loader)
            )
            curve.append(
                EpochRecord(epoch, train_loss, val_loss, val_acc, time.perf_counter() - t0)
            )
            self._check_val(val_loss, epoch)

    def _check_divergence(self, train_loss: float, initial: list[float], epoch: int) -> None:
        if not math.isfinite(train_loss):
            raise DivergedError(f"diverged: training loss became {train_loss} in epoch {epoch}")
        if self.divergence_factor is not None and initial and math.isfinite(initial[0]):
            limit = self.divergence_factor * max(initial[0], 1e-8)
            if train_loss > limit:
                raise DivergedError(
                    f"diverged: training loss {train_loss:.4g} in epoch {epoch} exceeds "
                    f"{self.divergence_factor:g} x the initial loss {initial[0]:.4g}"
                )

    @staticmethod
    def _check_val(val_loss: float, epoch: int) -> None:
        if not math.isfinite(val_loss):
            raise DivergedError(f"diverged: validation loss became {val_loss} in epoch {epoch}")

    # ------------------------------------------------------------------ validation
    def _validate_tensors(
        self, model: nn.Module, X_val: torch.Tensor, y_val: torch.Tensor
    ) -> tuple[float, float | None]:
        n = int(X_val.shape[0])
        return self._validate_batches(
            model,
            (
                (X_val[s : s + VAL_BATCH_SIZE], y_val[s : s + VAL_BATCH_SIZE])
                for s in range(0, n, VAL_BATCH_SIZE)
            ),
        )

    def _validate_batches(
        self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[float, float | None]:
        import torch

        model.eval()
        loss_sum, correct, n = 0.0, 0, 0
        has_accuracy = True
        with torch.inference_mode():
            for xb, yb in batches:
                xb, yb = xb.to(self.device), yb.to(self.device)
                out = model(xb)
                m = int(xb.shape[0])
                loss_sum += float(self.criterion(out, yb)) * m
                n += m
                hits = _correct_predictions(out, yb)
                if hits is None:
                    has_accuracy = False
                else:
                    correct += hits
        if n == 0:
            raise _StageError("dataset_fn", "the val_loader yielded no batches")
        return loss_sum / n, (correct / n if has_accuracy else None)

    # ------------------------------------------------------------------ user loaders
    def _user_loaders(self, fidelity: Fidelity) -> tuple[Iterable[Any], Iterable[Any]]:
        assert not isinstance(self.data, FidelityData)
        out = self.data(fidelity.fraction)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(
                f"dataset_fn({fidelity.fraction}) must return a pair (train_loader, "
                f"val_loader). Got {_describe_value(out)} instead."
            )
        for name, loader in zip(("train_loader", "val_loader"), out):
            if not isinstance(loader, Iterable):
                raise TypeError(
                    f"dataset_fn({fidelity.fraction}) returned a {name} that is not iterable "
                    f"({type(loader).__name__}); it must yield (inputs, targets) batches."
                )
        return out[0], out[1]

    @staticmethod
    def _split_batch(batch: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        if (
            not isinstance(batch, (tuple, list))
            or len(batch) < 2
            or not isinstance(batch[0], torch.Tensor)
            or not isinstance(batch[1], torch.Tensor)
        ):
            raise _StageError(
                "dataset_fn",
                f"the {name} must yield (inputs, targets) tensor pairs; got "
                f"{_describe_value(batch)}",
            )
        return batch[0], batch[1]

    # ------------------------------------------------------------------ landscape
    def probe_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed probe examples of this study (the same for every configuration)."""
        import torch

        if self._probe is None:
            if isinstance(self.data, FidelityData):
                X_pool, y_pool, _, _ = self.data.tensors(self.device)
                order = self.data.train_indices(1.0)
                take = torch.from_numpy(order[: self.probe_size]).to(self.device)
                self._probe = (X_pool.index_select(0, take), y_pool.index_select(0, take))
            else:
                train_loader, _ = self._user_loaders(Fidelity(1.0, 1))
                xs, ys, n = [], [], 0
                for batch in train_loader:
                    xb, yb = self._split_batch(batch, "train_loader")
                    xs.append(xb)
                    ys.append(yb)
                    n += int(xb.shape[0])
                    if n >= self.probe_size:
                        break
                self._probe = (
                    torch.cat(xs)[: self.probe_size].to(self.device),
                    torch.cat(ys)[: self.probe_size].to(self.device),
                )
        return self._probe

    def probe_cost_bound(self) -> float:
        """The most landscape probes can cost one evaluation of this trainer
        (:func:`probe_cost_bound` over its training pool)."""
        pool = self.data.n_train if isinstance(self.data, FidelityData) else self._user_pool_size()
        return probe_cost_bound(pool, self.probe_size)

    def _landscape(self, model: nn.Module, optimizer: Any) -> tuple[dict[str, float], float]:
        """Cheap-tier features and their cost in full-data-epoch equivalents."""
        from llp.landscape import cheap_tier

        inputs, targets = self.probe_set()
        with warnings.catch_warnings():
            # torch's forward-mode AD calls a deprecated torch.jit.script internally.
            warnings.filterwarnings(
                "ignore", "`torch.jit.script` is deprecated", DeprecationWarning
            )
            report = cheap_tier(
                model,
                self.criterion,
                inputs,
                targets,
                seed=self.seed,
                learning_rate=_learning_rate(optimizer),
            )
        pool = self.data.n_train if isinstance(self.data, FidelityData) else self._user_pool_size()
        return dict(report.features), float(report.cost_fb) * int(inputs.shape[0]) / pool

    def _landscape_or_nan(self, model: nn.Module, optimizer: Any) -> tuple[dict[str, float], float]:
        """The landscape probes never throw away a completed training run: if they raise
        (e.g. a model ``torch.func`` cannot transform), the features are NaN and the
        run is still recorded as complete, with a warning."""
        try:
            return self._landscape(model, optimizer)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # measured features are optional, the run is not
            if _wrapped_interrupt(exc):
                raise KeyboardInterrupt from exc
            from llp.landscape import CHEAP_TIER_FEATURES

            warnings.warn(
                f"landscape probes failed ({type(exc).__name__}: {exc}); recording NaN",
                RuntimeWarning,
                stacklevel=2,
            )
            return {name: math.nan for name in CHEAP_TIER_FEATURES}, 0.0

    def _user_pool_size(self) -> int:
        """Examples in a user dataset_fn's full training set (counted once, cached)."""
        if self._pool_size is None:
            train_loader, _ = self._user_loaders(Fidelity(1.0, 1))
            dataset = getattr(train_loader, "dataset", None)
            if dataset is not None and hasattr(dataset, "__len__"):
                self._pool_size = len(dataset)
            else:
                self._pool_size = sum(
                    int(self._split_batch(b, "train_loader")[0].shape[0]) for b in train_loader
                )
        return max(self._pool_size, 1)

    # ------------------------------------------------------------------ failures
    def _failed(
        self,
        config: Mapping[str, Any],
        fidelity: Fidelity,
        curve: list[EpochRecord],
        state: dict[str, Any],
        seed: int,
        started: float,
        reason: str,
        traceback: str | None,
    ) -> EvaluationResult:
        return EvaluationResult(
            config=config,
            fidelity=fidelity,
            status=EvaluationStatus.FAILED,
            curve=tuple(curve),
            score=None,
            objective=self.objective,
            cost=fidelity.fraction * state["epochs_run"],
            seconds=time.perf_counter() - started,
            train_seconds=state["train_seconds"],
            n_train=state["n_train"],
            seed=seed,
            failure_reason=reason,
            traceback=traceback,
        )


class _StageError(Exception):
    """A user-code contract broken inside one evaluation (recorded, not raised)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.llp_stage = stage


def _correct_predictions(out: torch.Tensor, target: torch.Tensor) -> int | None:
    """Number of correct class predictions, or ``None`` when accuracy is undefined."""
    if target.is_floating_point():
        if out.ndim == 2 and out.shape[1] == 1 and target.numel() == out.shape[0]:
            # Binary logits with BCEWithLogitsLoss and 0/1 float targets.
            return int(((out.view(-1) > 0).to(target.dtype) == target.view(-1)).sum())
        return None
    if out.ndim == 2 and out.shape[1] > 1 and target.ndim == 1:
        return int((out.argmax(dim=1) == target).sum())
    return None


def _learning_rate(optimizer: Any) -> float | None:
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        return None
    lr = groups[0].get("lr")
    if hasattr(lr, "item"):
        lr = lr.item()
    return float(lr) if isinstance(lr, (int, float)) else None


def _describe_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        inner = ", ".join(type(v).__name__ for v in value[:4])
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    return f"a {type(value).__name__}"


def _wrapped_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C that arrived inside TorchScript or a C++ op comes back as a
    ``RuntimeError`` naming ``KeyboardInterrupt``: it is the user's interrupt, not a
    failure of the configuration."""
    return isinstance(exc, RuntimeError) and "KeyboardInterrupt" in str(exc)
