"""One report document, rendered to HTML (self-contained: figures inlined) and to Markdown (its summary).

A `Document` is a title, a lead paragraph, a body and an appendix, each a list of blocks: `Heading`,
`Paragraph`, `Table`, `Figure` and `Gallery`. The report builds it once; `to_html` and `to_markdown` only know
how to write each kind of block. The Markdown is the summary: a block marked `detail` (the reconstruction
grids, the skipped and failed steps) shows in the HTML only, and a heading or paragraph may give the HTML a
fuller wording (`full`) than the Markdown's.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    full: str | None = None  # the HTML's wording, when fuller than the Markdown's


@dataclass(frozen=True)
class Paragraph:
    text: str
    full: str | None = None


@dataclass(frozen=True)
class Table:
    headers: list[str]
    lines: list[list[str]]
    heading: Heading | None = None  # a title kept with the table
    css_class: str | None = None  # the HTML wraps the table in a <div class=...>
    detail: bool = False


@dataclass(frozen=True)
class Figure:
    png: bytes
    caption: str
    link: str  # the PNG's path beside the Markdown file
    name: str  # the Markdown's alt text


@dataclass(frozen=True)
class Gallery:
    """Figures side by side under a heading (the HTML only)."""

    heading: Heading
    items: list[tuple[str, bytes]]  # (caption, PNG)
    detail: bool = True


Block = Heading | Paragraph | Table | Figure | Gallery


@dataclass
class Document:
    title: str
    lead: Paragraph
    body: list[Block] = field(default_factory=list)
    appendix: list[Block] = field(default_factory=list)


# --- HTML ----------------------------------------------------------------------------------------------


def to_html(doc: Document) -> str:
    return _PAGE.format(title=doc.title, meta=_html(doc.lead), body="\n".join(_html(b) for b in doc.body),
                        problems="\n".join(_html(b) for b in doc.appendix))


def html_table(headers: list[str], lines: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in line) + "</tr>" for line in lines)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.full or block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.full or block.text)}</p>"
    if isinstance(block, Table):
        table = html_table(block.headers, block.lines)
        if block.css_class:
            table = f"<div class={block.css_class}>{table}</div>"
        return (_html(block.heading) if block.heading else "") + table
    if isinstance(block, Figure):
        return _html_figure(block.caption, block.png)
    if isinstance(block, Gallery):
        return "\n".join([_html(block.heading) + "<div class=grids>",
                          *(_html_figure(caption, png) for caption, png in block.items), "</div>"])
    raise TypeError(f"not a report block: {block!r}")


def _html_figure(caption: str, png: bytes) -> str:
    img = f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
    return f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} figcaption {{ font-size: 0.85em; color: #555; }}
.grids figure {{ display: inline-block; width: 48%; vertical-align: top; margin: 0.5em 0.5%; }}
.text td {{ text-align: left; }}
</style></head>
<body><h1>{title}</h1>
{meta}
{body}
{problems}
</body></html>
"""


# --- Markdown ------------------------------------------------------------------------------------------


def to_markdown(doc: Document) -> str:
    blocks = [Heading(1, doc.title), doc.lead, *doc.body, *doc.appendix]
    return "\n".join(_markdown(b) for b in blocks if not getattr(b, "detail", False))


def markdown_table(headers: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out) + "\n"


def _markdown(block: Block) -> str:
    """One block as Markdown lines ending in a newline (blocks are separated by an empty line)."""
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}\n"
    if isinstance(block, Paragraph):
        return f"{block.text}\n"
    if isinstance(block, Table):
        table = markdown_table(block.headers, block.lines)
        return (_markdown(block.heading) + "\n" if block.heading else "") + table
    if isinstance(block, Figure):
        return f"![{block.name}]({block.link})\n"
    raise TypeError(f"not a Markdown block: {block!r}")
