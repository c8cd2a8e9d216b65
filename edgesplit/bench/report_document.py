"""One report document, rendered to HTML (self-contained: figures inlined) and to Markdown (its summary).

A `Document` is a title, a lead paragraph, a body and an appendix, each a list of blocks: `Heading`,
`Paragraph`, `Table`, `Figure` and `Gallery`. The report builds it once; each kind of block writes itself
(`html()`, `markdown()`), and `to_html` and `to_markdown` only put the blocks in a page. The Markdown is the
summary: a block marked `detail` (the reconstruction grids, the skipped and failed steps) shows in the HTML only,
and a heading or paragraph may give the HTML a fuller wording (`full`) than the Markdown's.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import ClassVar


class _Text:
    """A heading (`level` 1 to 6) or a paragraph (`level` 0): `text`, and `full`, the HTML's wording when fuller."""

    level: int
    text: str
    full: str | None

    def html(self) -> str:
        tag = f"h{self.level}" if self.level else "p"
        return f"<{tag}>{html.escape(self.full or self.text)}</{tag}>"

    def markdown(self) -> str:
        """Markdown lines ending in a newline (blocks are separated by an empty line); likewise every block."""
        prefix = f"{'#' * self.level} " if self.level else ""
        return f"{prefix}{self.text}\n"


@dataclass(frozen=True)
class Heading(_Text):
    level: int
    text: str
    full: str | None = None  # the HTML's wording, when fuller than the Markdown's


@dataclass(frozen=True)
class Paragraph(_Text):
    text: str
    full: str | None = None
    level: ClassVar[int] = 0


@dataclass(frozen=True)
class Table:
    headers: list[str]
    lines: list[list[str]]
    heading: Heading | None = None  # a title kept with the table
    css_class: str | None = None  # the HTML wraps the table in a <div class=...>
    detail: bool = False

    def html(self) -> str:
        table = html_table(self.headers, self.lines)
        if self.css_class:
            table = f"<div class={self.css_class}>{table}</div>"
        return (self.heading.html() if self.heading else "") + table

    def markdown(self) -> str:
        table = markdown_table(self.headers, self.lines)
        return (self.heading.markdown() + "\n" if self.heading else "") + table


@dataclass(frozen=True)
class Figure:
    png: bytes
    caption: str
    link: str  # the PNG's path beside the Markdown file
    name: str  # the Markdown's alt text

    def html(self) -> str:
        return _html_figure(self.caption, self.png)

    def markdown(self) -> str:
        return f"![{self.name}]({self.link})\n"


@dataclass(frozen=True)
class Gallery:
    """Figures side by side under a heading (the HTML only)."""

    heading: Heading
    items: list[tuple[str, bytes]]  # (caption, PNG)
    detail: bool = True

    def html(self) -> str:
        return "\n".join([self.heading.html() + "<div class=grids>",
                          *(_html_figure(caption, png) for caption, png in self.items), "</div>"])

    def markdown(self) -> str:
        raise TypeError(f"not a Markdown block: {self!r}")


Block = Heading | Paragraph | Table | Figure | Gallery


@dataclass
class Document:
    title: str
    lead: Paragraph
    body: list[Block] = field(default_factory=list)
    appendix: list[Block] = field(default_factory=list)


# --- HTML ----------------------------------------------------------------------------------------------


def to_html(doc: Document) -> str:
    return _PAGE.format(title=doc.title, meta=doc.lead.html(), body="\n".join(b.html() for b in doc.body),
                        problems="\n".join(b.html() for b in doc.appendix))


def html_table(headers: list[str], lines: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in line) + "</tr>" for line in lines)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
    return "\n".join(b.markdown() for b in blocks if not getattr(b, "detail", False))


def markdown_table(headers: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out) + "\n"
