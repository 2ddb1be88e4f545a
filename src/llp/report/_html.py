"""The report page: one self-contained HTML file next to its PNG figures (no scripts, no
network: it opens the same offline, in a browser or a CI artifact viewer)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1d1d1f; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.2em; margin: 1.6em 0 0.5em; border-bottom: 1px solid #dde1e6;
     padding-bottom: 0.2em; }
.sub { color: #5f6672; margin: 0 0 1em; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { background: white; border: 1px solid #e2e5ea; border-radius: 8px; padding: 10px 14px;
        min-width: 150px; }
.card .v { font-size: 1.35em; font-weight: 600; }
.card .k { color: #5f6672; font-size: 0.85em; }
figure { background: white; border: 1px solid #e2e5ea; border-radius: 8px; margin: 14px 0;
         padding: 12px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: #3c4149; font-size: 0.9em; margin-top: 8px; }
table { border-collapse: collapse; background: white; font-size: 0.9em; margin: 6px 0; }
th, td { border: 1px solid #e2e5ea; padding: 4px 10px; text-align: left; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: white; border: 1px solid #e2e5ea; border-radius: 8px; padding: 10px;
      overflow-x: auto; font-size: 0.85em; }
.note { color: #7a4f00; background: #fff6e0; border: 1px solid #f0dca8; border-radius: 6px;
        padding: 6px 10px; margin: 6px 0; font-size: 0.9em; }
footer { color: #8a9099; font-size: 0.8em; margin-top: 36px; }
"""


@dataclass(frozen=True)
class FigureBlock:
    """A figure of the page: its PNG (relative to the page), title and caption."""

    file: str
    title: str
    caption: str
    alt: str


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; numbers are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, (int, float)) and not isinstance(cell, bool)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{esc(format_value(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_page(
    *,
    title: str,
    subtitle: str,
    cards: Sequence[tuple[str, str]],
    best_config: Mapping[str, Any] | None,
    figures: Sequence[FigureBlock],
    sections: Sequence[tuple[str, str]],
    notes: Sequence[str],
    settings: Mapping[str, Any],
    footer: str,
) -> str:
    """The whole page. ``sections`` are ``(heading, html)`` pairs placed after the
    figures; every other argument is plain text and is escaped here."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">{esc(subtitle)}</p>',
        '<div class="cards">',
    ]
    for value, label in cards:
        parts.append(
            f'<div class="card"><div class="v">{esc(value)}</div>'
            f'<div class="k">{esc(label)}</div></div>'
        )
    parts.append("</div>")
    if best_config:
        parts.append("<h2>Best configuration</h2>")
        parts.append(table(["hyperparameter", "value"], [(k, v) for k, v in best_config.items()]))
    for note in notes:
        parts.append(f'<p class="note">{esc(note)}</p>')
    for fig in figures:
        parts.append(f"<h2>{esc(fig.title)}</h2>")
        parts.append(
            f'<figure><img src="{esc(fig.file)}" alt="{esc(fig.alt)}">'
            f"<figcaption>{esc(fig.caption)}</figcaption></figure>"
        )
    for heading, body in sections:
        parts.append(f"<h2>{esc(heading)}</h2>{body}")
    parts.append("<h2>Study settings</h2>")
    parts.append(f"<pre>{esc(json.dumps(settings, indent=2, sort_keys=True, default=str))}</pre>")
    parts.append(f"<footer>{esc(footer)}</footer></main></body></html>")
    return "\n".join(parts)


__all__ = ["FigureBlock", "esc", "render_page", "table"]
