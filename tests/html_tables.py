"""Tables read back as rows of cell texts: from HTML (what a notebook shows) and from the
terminal's layouts, so that tests can hold the one to the other cell by cell."""
from __future__ import annotations

import re
from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ""
        elif tag == "br" and self.cell is not None:
            self.cell += "\n"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip(" "))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def html_rows(text: str) -> list[list[str]]:
    """Every row of every <table> in `text`: its cells' texts, a <br> as a line break, empty
    cells left out."""
    parser = _Tables()
    parser.feed(text)
    return [[cell for cell in row if cell] for row in parser.rows]


def terminal_rows(text: str) -> list[list[str]]:
    """The rows of the terminal's tables (tabulate's simple and plain layouts): cells two or
    more spaces apart; rules, blank lines and lines of one cell (titles, notes) left out."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()
            if line.strip() and not set(line.strip()) <= {"-", " "}]
    return [row for row in rows if len(row) > 1]


def markdown_rows(text: str) -> list[list[str]]:
    """The rows of github-style tables: cells between bars, `<br>` as a line break, the
    backticks of code removed, the rule under the header left out."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", ":", " "}:
            continue
        cells = [c.strip().replace("<br>", "\n").strip("`") for c in line.strip("|").split("|")]
        rows.append([c for c in cells if c])
    return rows
