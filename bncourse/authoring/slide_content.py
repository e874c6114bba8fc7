"""What a slide shows of a notebook cell, and what goes to the speaker notes.

A notebook is written to be read; a slide is looked at from the back of a hall.  So the
deck shows a few words of each markdown cell and the lecturer gets the rest as speaker
notes.  The rule (the contract authors write to, see ``CONTRIBUTING.md``):

- a markdown cell with ``metadata.slide`` (markdown text) shows exactly that text; the
  whole cell goes to the speaker notes (``metadata.slide = ""`` shows nothing);
- otherwise the slide shows, in order: headings, display equations (``$$ … $$``), tables,
  images, list items (each cut to its first sentence) and the first sentence of the cell's
  first paragraph; every other paragraph goes to the speaker notes, and so does the whole
  cell whenever anything of it was left out, so the notes read as the notebook does;
- a ``<details>`` block (a quiz's answers) is never on the question's slide: it becomes
  the next slide, "Answers", shown by the same rule (its full text in the notes), so an
  answer appears only when the lecturer moves on — in the live deck and in the PDF alike;
- speaker-notes cells (slide type ``notes``) lose a leading "Speaker notes:".

An exercise cell is shown as a card naming the function and what it asks (its signature
and the first line of its docstring), never its body; see :func:`exercise_card`.
"""

from __future__ import annotations

import ast
import html
import itertools
import re
from dataclasses import dataclass

__all__ = [
    "MAX_ITEM_WORDS",
    "MAX_SENTENCE_WORDS",
    "MAX_SLIDE_WORDS",
    "MAX_TABLE_SLIDE_WORDS",
    "SlideText",
    "chunk_visible",
    "exercise_card",
    "first_clause",
    "first_sentence",
    "prose_words",
    "split_details",
    "split_markdown",
    "strip_notes_prefix",
]

#: A first sentence longer than this is cut after this many words (with "…").
MAX_SENTENCE_WORDS = 30
#: A list item shows its first clause, at most this many words.
MAX_ITEM_WORDS = 12
#: Words of prose above which a cell's visible part is continued on the next slide.
MAX_SLIDE_WORDS = 45
#: A slide whose content is a table (with its heading and a lead sentence) may hold this many.
MAX_TABLE_SLIDE_WORDS = 70

_ABBREVIATIONS = ("e.g.", "i.e.", "i.i.d.", "et al.", "vs.", "cf.", "Eq.", "Fig.", "Sec.", "approx.", "resp.", "etc.")
_NOTES_PREFIX = re.compile(r"^\s*(?:\*\*|_)?speaker notes?\s*:?\s*(?:\*\*|_)?\s*:?\s*", re.IGNORECASE)
_DETAILS = re.compile(r"<details\b[^>]*>(.*?)</details\s*>", re.DOTALL | re.IGNORECASE)
_SUMMARY = re.compile(r"^\s*<summary\b[^>]*>(.*?)</summary\s*>", re.DOTALL | re.IGNORECASE)
_LIST_ITEM = re.compile(r"^(\s{0,3})([-*+]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")


@dataclass(frozen=True)
class SlideText:
    """A markdown cell as the deck shows it: ``visible`` on the slide, ``notes`` for the
    lecturer (empty when the slide shows the whole cell)."""

    visible: str
    notes: str


def strip_notes_prefix(text: str) -> str:
    """``text`` without a leading "Speaker notes:" (any case, optionally bold)."""
    return _NOTES_PREFIX.sub("", text, count=1)


def _protected_spans(text: str) -> list[tuple[int, int]]:
    """Spans of inline math, inline code and parentheses, inside which no sentence ends."""
    spans: list[tuple[int, int]] = []
    for pattern in (r"\$\$.*?\$\$", r"\$[^$]*\$", r"`[^`]*`", r"\([^()]*\)", r"\[[^\]]*\]\([^)]*\)"):
        spans += [(m.start(), m.end()) for m in re.finditer(pattern, text, re.DOTALL)]
    return spans


def first_sentence(text: str, max_words: int = MAX_SENTENCE_WORDS) -> str:
    """The first sentence of a paragraph (ends at ``.``, ``?`` or ``!`` before a space
    or the end, outside inline math, code and parentheses, not after an abbreviation such
    as "e.g."); cut after ``max_words`` words with "…" when longer."""
    text = " ".join(text.split())
    spans = _protected_spans(text)
    end = len(text)
    for m in re.finditer(r"[.?!](?=\s|$)", text):
        i = m.start()
        if any(a <= i < b for a, b in spans):
            continue
        if any(text[: i + 1].endswith(a) for a in _ABBREVIATIONS):
            continue
        if re.search(r"(?:^|[\s(\-])[A-Z]$", text[:i]):  # an initial: "Ioffe, S. and ..."
            continue
        if re.search(r"\(\d{4}[a-z]?\)$", text[:i]):  # a reference goes on to its title
            continue
        end = i + 1
        break
    sentence = text[:end].strip()
    words = sentence.split()
    if len(words) > max_words:
        cut = " ".join(words[:max_words])
        if cut.count("$") % 2 or cut.count("`") % 2:  # never cut inside math or code
            return sentence
        return _closed(cut.rstrip(",;")) + " …"
    return sentence


def _closed(text: str) -> str:
    """``text`` cut short, with the bold (``**``) and italics (``*``) it opened closed again."""
    if text.count("**") % 2:
        text += "**"
    if text.replace("**", "").count("*") % 2:
        text += "*"
    return text


def first_clause(text: str, max_words: int = MAX_ITEM_WORDS) -> str:
    """A list item as a bullet: its first sentence, cut at the first ``,``/``;``/`` — ``
    after a few words when longer than ``max_words`` words, else after ``max_words``."""
    sentence = first_sentence(text, max_words=10**6)
    words = sentence.split()
    if len(words) <= max_words:
        return sentence
    spans = _protected_spans(sentence)
    for m in re.finditer(r"(,|;| —| –)(?=\s)", sentence):
        i = m.start()
        if any(a <= i < b for a, b in spans):
            continue
        if 4 <= len(sentence[:i].split()) <= max_words:
            return _closed(sentence[:i].rstrip()) + " …"
    return first_sentence(sentence, max_words=max_words)


#: A question in a list is shown whole up to this many words.
MAX_QUESTION_WORDS = 30


def _question(text: str) -> str | None:
    """``text`` up to its first question mark (outside math and code), if it asks one within
    :data:`MAX_QUESTION_WORDS` words."""
    spans = _protected_spans(text)
    for m in re.finditer(r"\?", text):
        if not any(a <= m.start() < b for a, b in spans):
            asked = text[: m.end()].strip()
            return asked if len(asked.split()) <= MAX_QUESTION_WORDS else None
    return None


def _bullet(item: str) -> str:
    """A list item on a slide: a question whole, else its first clause; and any display
    equation it holds."""
    equations = re.findall(r"\$\$.*?\$\$", item, re.DOTALL)
    text = " ".join(re.sub(r"\$\$.*?\$\$", " ", item, flags=re.DOTALL).split())
    clause = _question(text) or first_clause(text)
    return clause + "".join(f"\n\n   {eq}" for eq in equations)


def split_details(source: str) -> tuple[str, list[tuple[str, str]]]:
    """``source`` without its ``<details>`` blocks, and each block as ``(summary, content)``
    in order (the ``<summary>`` text, tags stripped, or ``"Answers"`` when it has none)."""
    answers = []
    for m in _DETAILS.finditer(source):
        summary = _SUMMARY.search(m.group(1))
        title = re.sub(r"<[^>]+>", "", summary.group(1)).strip() if summary else ""
        answers.append((title or "Answers", _SUMMARY.sub("", m.group(1), count=1).strip()))
    return _DETAILS.sub("", source).strip(), answers


def _blocks(source: str) -> list[str]:
    """Markdown blocks: runs of lines separated by blank lines, keeping ``$$ … $$`` and
    fenced code whole."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in source.splitlines():
        stripped = line.strip()
        if fence is None and not stripped and current and "\n".join(current).count("$$") % 2 == 0:
            blocks.append("\n".join(current))
            current = []
            continue
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fence = None if fence else stripped[:3]
        if fence is None and _HEADING.match(line) and "\n".join(current).count("$$") % 2 == 0:
            if current:  # a heading is a block of its own, whatever follows it
                blocks.append("\n".join(current))
            blocks.append(line)
            current = []
            continue
        if stripped or current:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _list_items(block: str) -> list[tuple[str, str]]:
    """A list block as (marker with indent, item text) pairs."""
    items: list[tuple[str, str]] = []
    for line in block.splitlines():
        m = _LIST_ITEM.match(line)
        if m:
            items.append((m.group(0), line[m.end():]))
        elif items:
            items[-1] = (items[-1][0], items[-1][1] + " " + line.strip())
    return items


def _kind(block: str) -> str:
    first = block.lstrip().splitlines()[0] if block.strip() else ""
    if _HEADING.match(first):
        return "heading"
    if first.lstrip().startswith("$$") or first.lstrip().startswith("\\begin{"):
        return "math"
    if first.lstrip().startswith("|"):
        return "table"
    if first.lstrip().startswith("```") or first.lstrip().startswith("~~~"):
        return "code"
    if _LIST_ITEM.match(first):
        return "list"
    if first.lstrip().startswith("<") or first.lstrip().startswith("!["):
        return "html"
    return "paragraph"


def split_markdown(source: str, override: str | None = None) -> SlideText:
    """What the slide shows of a markdown cell and what goes to the notes (module docstring).

    ``<details>`` blocks are expected to be taken out first (:func:`split_details`).
    """
    if override is not None:
        return SlideText(override.strip(), source.strip())
    shown: list[str] = []
    first_paragraph_done = False
    for block in _blocks(source):
        kind = _kind(block)
        if kind == "heading" or kind in ("math", "table", "html", "code"):
            shown.append(block)
        elif kind == "list":
            shown.append("\n".join(marker + _bullet(text) for marker, text in _list_items(block)))
        elif not first_paragraph_done:
            shown.append(first_sentence(block))
            first_paragraph_done = True
    visible = "\n\n".join(shown).strip()
    whole = source.strip()
    if " ".join(visible.split()) == " ".join(whole.split()):
        return SlideText(whole, "")
    return SlideText(visible, whole)


_MARKUP = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|<[^>]+>|!\[[^\]]*\]\([^)]*\)", re.DOTALL)


def prose_words(markdown: str) -> int:
    """Words of prose in ``markdown``: math, code, HTML tags and heading/list markers not counted."""
    text = _MARKUP.sub(" ", markdown)
    text = re.sub(r"^\s*(#+|[-*+]|\d+[.)]|\|)", " ", text, flags=re.M)
    return sum(1 for w in text.split() if re.search(r"[A-Za-z0-9]", w))


def exercise_card(source: str) -> str | None:
    """The slide of an exercise cell, as HTML: its signature and the first line of its
    docstring (what it asks).  ``None`` if the cell defines no single
    function or class.  The body (stub or solution) is never part of it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    if len(defs) != 1:
        return None
    node = defs[0]
    if isinstance(node, ast.FunctionDef):
        signature = f"{node.name}({ast.unparse(node.args)})"
    else:
        signature = f"class {node.name}"
    doc = (ast.get_docstring(node) or "").strip().splitlines()
    asks = doc[0].strip() if doc else ""
    return (
        '<div class="bncourse-exercise">\n'
        f'<p class="bncourse-exercise-name">Exercise: <code>{html.escape(signature)}</code></p>\n'
        + (f'<p class="bncourse-exercise-asks">{html.escape(asks)}</p>\n' if asks else "")
        + "</div>"
    )


def _table_rows(block: str) -> tuple[list[str], list[str]]:
    lines = block.splitlines()
    if len(lines) >= 2 and re.match(r"^\s*\|?\s*:?-{2,}", lines[1]):
        return lines[:2], lines[2:]
    return [], lines


def chunk_visible(visible: str, max_words: int = MAX_SLIDE_WORDS) -> list[str]:
    """``visible`` cut into parts of at most ``max_words`` words of prose, each part for one
    slide: first at its ``#``/``##`` headings (a new section, a new slide), then where a
    section is still too long between blocks, list items or table rows (a table's header is
    repeated), as evenly as those allow.  A table with its heading and lead sentence stays
    whole up to :data:`MAX_TABLE_SLIDE_WORDS` words."""
    words = prose_words(visible)
    if words <= max_words or (words <= MAX_TABLE_SLIDE_WORDS and any(
            _kind(b) == "table" for b in _blocks(visible))):
        return [visible]
    sections: list[list[str]] = [[]]
    for block in _blocks(visible):
        if re.match(r"^\s{0,3}#{1,2}\s", block) and sections[-1]:
            sections.append([])
        sections[-1].append(block)
    if len(sections) > 1:
        return [part for section in sections for part in chunk_visible("\n\n".join(section), max_words)]
    return _chunk_section(visible, max_words)


def _chunk_section(visible: str, max_words: int) -> list[str]:
    """One section cut between blocks, list items or table rows (see :func:`chunk_visible`)."""
    units: list[tuple[str, str]] = []  # (text, how it joins the previous unit)
    for block in _blocks(visible):
        kind = _kind(block)
        if kind == "list":
            lines = block.splitlines()
            starts = [i for i, line in enumerate(lines) if _LIST_ITEM.match(line)] + [len(lines)]
            for n, (a, b) in enumerate(itertools.pairwise(starts)):
                units.append(("\n".join(lines[a:b]), "\n" if n else "\n\n"))
        elif kind == "table":
            header, rows = _table_rows(block)
            for n, row in enumerate(rows):
                units.append(("\n".join([*header, row]) if n == 0 or not header else row,
                              "\n" if n else "\n\n"))
                if n == 0 and header:
                    units[-1] = (units[-1][0], "\n\n")
        else:
            units.append((block, "\n\n"))
    def pack(limit: float) -> list[str]:
        parts: list[list[tuple[str, str]]] = [[]]
        table_header: list[str] = []
        for text, join in units:
            if _kind(text) == "table" and _table_rows(text)[0]:
                table_header = _table_rows(text)[0]
            current = parts[-1]
            words = sum(prose_words(t) for t, _ in current)
            if current and words + prose_words(text) > limit and any(
                    _kind(t) != "heading" for t, _ in current):
                if join == "\n" and table_header and not text.lstrip().startswith(table_header[0].strip()):
                    text = "\n".join([*table_header, text])
                moved: list[tuple[str, str]] = []  # a heading goes with what it heads
                while len(current) > 1 and _kind(current[-1][0]) == "heading":
                    moved.insert(0, (current.pop()[0], "\n\n"))
                parts.append([*moved, (text, "\n\n" if not moved else join)])
            else:
                current.append((text, join))
        out = ["".join((j if i else "") + t for i, (t, j) in enumerate(part)).strip() for part in parts]
        return [p for p in out if p]

    widest = pack(max_words)
    # as many slides as needed, and as even as the units allow (no one-bullet tail): the
    # smallest limit that needs no more slides
    for limit in range(-(-prose_words(visible) // len(widest)), max_words):
        even = pack(limit)
        if len(even) == len(widest):
            return even
    return widest
