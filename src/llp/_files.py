"""Sizes of data files before they are read: a small compressed file can expand
enormously, so readers compare what it will take in memory with their limit first."""

from __future__ import annotations

import importlib
from pathlib import Path


def parquet_size(path: Path) -> int:
    """What the Parquet file's columns take once read, estimated from its footer before
    anything is loaded: their uncompressed pages, and at least 8 bytes per cell
    (run-length and dictionary encodings keep repeated values small on disk only).
    Needs pyarrow; raises what pyarrow raises for a file that is not Parquet."""
    pq = importlib.import_module("pyarrow.parquet")
    meta = pq.ParquetFile(path).metadata
    pages = sum(
        meta.row_group(i).column(j).total_uncompressed_size
        for i in range(meta.num_row_groups)
        for j in range(meta.num_columns)
    )
    return int(max(pages, 8 * meta.num_rows * meta.num_columns))


def too_large(name: str, size: int, what: str, limit: int, reader: str, advice: str) -> str:
    """The one-line refusal of a file that would take ``size`` bytes of ``what`` once
    read, more than ``limit``."""
    return (
        f"{name} holds {size / 2**20:,.0f} MiB of {what}, more than the "
        f"{limit / 2**20:,.0f} MiB {reader} (checked before loading: a small compressed "
        f"file can expand enormously). {advice}"
    )


__all__ = ["parquet_size", "too_large"]
