"""A self-contained HTML report: figures embedded as PNG, no server, opens offline."""

from __future__ import annotations

import base64
import html
import io

import matplotlib.pyplot as plt

__all__ = ["figure_block", "table_block", "text_block", "paragraph_block", "html_page"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.92em; }
p { line-height: 1.45; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
"""


def figure_block(fig, caption: str, *, name: str, dpi: int = 90) -> str:
    """A <figure> with the matplotlib figure embedded as a base64 PNG (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure id="{html.escape(name)}"><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>")


def table_block(header, rows, *, caption: str = "") -> str:
    """An HTML table from a header and rows of already formatted cells."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_block(text: str) -> str:
    """Preformatted text."""
    return f"<pre>{html.escape(text)}</pre>"


def paragraph_block(text: str) -> str:
    """A paragraph of prose (wrapped by the browser, unlike :func:`text_block`)."""
    return f"<p>{html.escape(text)}</p>"


def html_page(title: str, sections) -> str:
    """The page: a title, then (heading, list of blocks) sections."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for heading, blocks in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.extend(blocks)
    parts.append("</body></html>")
    return "\n".join(parts)
