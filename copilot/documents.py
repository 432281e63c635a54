"""Reading the knowledge folder: guidance documents in Markdown, text, HTML or PDF, split into cited passages."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import yaml

from copilot.errors import CopilotError, DataFileError, yaml_error

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")
FRONT_MATTER_KEYS = {"title", "source", "tags"}
# Passages small enough to be specific, with overlap so a sentence on a boundary stays whole in one of them.
PASSAGE_CHARS = 600
PASSAGE_OVERLAP = 150


@dataclass(frozen=True)
class Passage:
    """A piece of guidance as indexed: its text, where it came from, and the heading above it."""

    id: str
    text: str
    title: str
    heading: str
    source: str
    position: int

    @property
    def embedding_text(self) -> str:
        """The text that is embedded: title and heading give a short passage its context."""
        context = f"{self.title} — {self.heading}" if self.heading and self.heading != self.title else self.title
        return f"{context}\n{self.text}"


@dataclass
class Document:
    """One guidance document: its title, repo-relative source path and the text under each heading."""

    path: Path
    source: str
    title: str
    sections: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class LoadReport:
    """The documents that loaded, and a clear message for each file that did not."""

    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _HTMLText(HTMLParser):
    """Collects visible text from HTML, turning h1–h3 into Markdown headings."""

    _SKIP = {"script", "style", "noscript", "template"}
    _BLOCK = {"p", "div", "li", "br", "tr", "section", "article", "h1", "h2", "h3", "h4", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in ("h1", "h2", "h3"):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data.strip()
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataFileError(
            path, "looks like a binary file, not text", fix="save the guidance as Markdown, text or HTML"
        )
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            return raw.decode(codec)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFileError(
            path,
            f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            line=line,
            fix="re-save the file with UTF-8 encoding",
        ) from exc


def _split_front_matter(path: Path, text: str) -> tuple[dict[str, object], str]:
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        raise DataFileError(
            path,
            "front-matter starts with --- but never ends",
            line=1,
            fix="close the header with a line of three dashes: ---",
        )
    header = text[3:end]
    try:
        meta = yaml.safe_load(header) or {}
    except yaml.YAMLError as exc:
        raise yaml_error(
            path,
            exc,
            what="front-matter is not valid YAML",
            fix='quote a title that contains a colon: title: "A: B"',
            first_line=2,
        ) from exc
    if not isinstance(meta, dict):
        raise DataFileError(path, "front-matter must be `key: value` lines", line=2, fix="write e.g. title: My title")
    for number, key in enumerate(meta, start=2):
        if key not in FRONT_MATTER_KEYS:
            raise DataFileError(
                path,
                f"unknown front-matter key `{key}`",
                line=number,
                fix=f"use only {', '.join(sorted(FRONT_MATTER_KEYS))}",
            )
    body = text[end + 4 :]
    return meta, body.split("\n", 1)[1] if "\n" in body else ""


def _sections(markdown: str, title: str) -> list[tuple[str, str]]:
    """Split Markdown into (nearest heading, text) pairs; a list item's lead label counts as a heading."""
    sections: list[tuple[str, str]] = []
    heading = title
    buffer: list[str] = []

    def flush() -> None:
        body = "\n".join(buffer).strip()
        if body:
            sections.append((heading, body))
        buffer.clear()

    for line in markdown.splitlines():
        match = re.match(r"^\s{0,3}#{1,6}\s+(.*)$", line)
        if match:
            flush()
            heading = match.group(1).strip() or title
            continue
        # "4. Outline your response – ..." or "- Listen: ..." carry their own topic label.
        label = re.match(r"^\s*(?:\d+\.|[-*])\s+([^–:\n]{3,60}?)\s*[–:-]\s+\S", line)
        if label:
            flush()
            heading = label.group(1).strip()
        buffer.append(line)
    flush()
    return sections


def read_document(path: Path, root: Path) -> Document:
    """Read one guidance file; raises DataFileError with the file and a fix when it cannot be used."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(path, f"cannot be read ({exc.strerror})", fix="check the file's permissions") from exc
    suffix = path.suffix.lower()
    meta: dict[str, object] = {}
    if suffix == ".pdf":
        text, title = _read_pdf(path, raw), ""
    else:
        text = _decode(path, raw)
        title = ""
        if suffix in (".html", ".htm"):
            parser = _HTMLText()
            parser.feed(text)
            text, title = "".join(parser.parts), parser.title
        elif suffix in (".md", ".markdown"):
            meta, text = _split_front_matter(path, text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not re.search(r"\w{2,}", text):
        raise DataFileError(path, "has no text to index", fix="add the guidance text, or remove the empty file")
    first_heading = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    title = str(meta.get("title") or title or (first_heading.group(1) if first_heading else path.stem)).strip()
    try:
        source = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        source = path.as_posix()
    return Document(path=path, source=source, title=title, sections=_sections(text, title))


def _read_pdf(path: Path, raw: bytes) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise DataFileError(path, f"is not a readable PDF ({exc})", fix="export it again, or save it as text") from exc


def load_documents(knowledge_dir: Path, root: Path | None = None) -> LoadReport:
    """Read every supported file under the knowledge folder; bad files are reported, the rest still load."""
    if not knowledge_dir.is_dir():
        raise CopilotError(
            f"The knowledge folder {knowledge_dir} does not exist.",
            fix="create it and put the service documents (Markdown, text, HTML or PDF) in it",
        )
    root = root or knowledge_dir.parent
    report = LoadReport()
    files = sorted(p for p in knowledge_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            report.problems.append(f"{path}: skipped, not a supported type ({', '.join(SUPPORTED_SUFFIXES)})")
            continue
        try:
            report.documents.append(read_document(path, root))
        except DataFileError as exc:
            report.problems.append(str(exc))
    if not report.documents:
        detail = "; ".join(report.problems) if report.problems else "it is empty"
        raise CopilotError(
            f"No guidance could be read from {knowledge_dir}: {detail}.",
            fix="add at least one Markdown, text, HTML or PDF service document",
        )
    return report


def split_passages(document: Document) -> list[Passage]:
    """Split a document into overlapping passages that keep their title and nearest heading."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=PASSAGE_CHARS,
        chunk_overlap=PASSAGE_OVERLAP,
        separators=["\n\n", "\n", ". ", "! ", "? ", "” ", "; ", ", ", " "],
        keep_separator="end",
    )
    passages: list[Passage] = []
    for heading, body in document.sections:
        for chunk in splitter.split_text(body):
            text = chunk.strip()
            if len(text) < 20:
                continue
            digest = hashlib.sha256(f"{document.source}\n{document.title}\n{heading}\n{text}".encode()).hexdigest()
            passages.append(
                Passage(
                    id=digest[:24],
                    text=text,
                    title=document.title,
                    heading=heading,
                    source=document.source,
                    position=len(passages),
                )
            )
    return passages
