"""Reports of stored studies: an HTML page with PNG figures, read from the knowledge base.

:func:`build_report` writes, for one study, ``index.html`` with six figures (best score
against budget spent, the rung diagram, learning curves, loss-landscape slices of the best
configurations, the meta-model's feature importances, its predictions against the
measured scores) and ``report.json`` with every plotted number. The series behind the
figures are public too (:func:`load_study`, :func:`budget_series`, ...), for notebooks.

>>> from llp.report import build_report
>>> build_report("llp-runs/knowledge.db", "digits-mlp-1a2b3c4d",
...              "llp-runs/reports/digits").index  # doctest: +SKIP
PosixPath('llp-runs/reports/digits/index.html')
"""

from __future__ import annotations

from llp.report._build import FIGURE_FILES, Report, build_report
from llp.report._collect import (
    StudyData,
    best_evaluation,
    budget_series,
    curve_series,
    load_study,
    prediction_series,
    proposals,
    rung_series,
    source_table,
    top_trials,
)
from llp.report._landscape import SliceResult, landscape_slices
from llp.report._meta import Importances, refit_importances, surrogate_feature_names

__all__ = [
    "FIGURE_FILES",
    "Importances",
    "Report",
    "SliceResult",
    "StudyData",
    "best_evaluation",
    "budget_series",
    "build_report",
    "curve_series",
    "landscape_slices",
    "load_study",
    "prediction_series",
    "proposals",
    "refit_importances",
    "rung_series",
    "source_table",
    "surrogate_feature_names",
    "top_trials",
]
