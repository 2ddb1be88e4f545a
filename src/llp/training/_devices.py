"""Where an evaluation runs: the study's device, and one device per worker process.

A study names one device (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``). In the
driver process that device is used as named. In a worker process of llp's executors,
each worker has a *slot* (0, 1, 2, ... in the order the workers started; for a Dask
worker, its integer name), and an unnumbered CUDA device (``"cuda"``, or ``"auto"`` on
a machine with CUDA) becomes ``cuda:(slot mod the number of visible GPUs)``:

- ``n_workers`` equal to the number of GPUs puts one worker on each GPU;
- ``n_workers`` a multiple ``k`` of it runs ``k`` evaluations side by side on every GPU
  (small models leave a GPU mostly idle; several processes keep it busy);
- a numbered device (``"cuda:1"``) is never moved, and a worker that sees one GPU
  (``CUDA_VISIBLE_DEVICES`` set per worker, as dask-cuda does) uses it.

Pinning never changes what an evaluation computes on a given device: the trial's seed,
data order and initialisation do not depend on the slot.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: This process's worker slot (``None`` in the driver and in workers llp did not start).
_worker_slot: int | None = None


def set_worker_slot(slot: int | None) -> None:
    """Record this worker process's slot (called once by llp's worker initialisers)."""
    global _worker_slot
    if slot is not None and (isinstance(slot, bool) or not isinstance(slot, int) or slot < 0):
        raise ValueError(f"The 'slot' parameter must be an int >= 0 or None. Got {slot!r}.")
    _worker_slot = slot


def worker_slot() -> int | None:
    """This process's worker slot, or ``None`` outside llp's worker processes."""
    return _worker_slot


def pinned_device(device: torch.device, slot: int | None, n_devices: int) -> torch.device:
    """The device a worker in ``slot`` uses for a study on ``device`` when ``n_devices``
    CUDA devices are visible (see the module docstring).

    >>> import torch
    >>> str(pinned_device(torch.device("cuda"), 5, 2))
    'cuda:1'
    >>> str(pinned_device(torch.device("cuda:0"), 5, 2))
    'cuda:0'
    >>> str(pinned_device(torch.device("cpu"), 5, 2))
    'cpu'
    """
    import torch

    if device.type != "cuda" or device.index is not None or slot is None or n_devices < 1:
        return device
    return torch.device("cuda", slot % n_devices)


def evaluation_device(device: torch.device) -> torch.device:
    """The device this process runs a study's evaluations on (:func:`pinned_device` with
    this process's slot and the CUDA devices it sees)."""
    if device.type != "cuda" or device.index is not None or _worker_slot is None:
        return device
    import torch

    return pinned_device(device, _worker_slot, torch.cuda.device_count())


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error of an accelerator or of the host
    allocator (``torch.OutOfMemoryError``, or the ``RuntimeError`` older code paths raise)."""
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom_type):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def release_memory(device: torch.device) -> None:
    """Give the memory of a failed evaluation back: collect what its tensors left in
    reference cycles, then return the caching allocator's free blocks to the device, so
    the next evaluation (or another process sharing the GPU) can use them."""
    gc.collect()
    if device.type == "cuda":
        import torch

        if torch.cuda.is_initialized():
            with torch.cuda.device(device):
                torch.cuda.empty_cache()


__all__ = [
    "evaluation_device",
    "is_out_of_memory",
    "pinned_device",
    "release_memory",
    "set_worker_slot",
    "worker_slot",
]
