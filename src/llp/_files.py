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


__all__ = ["parquet_size"]
