"""The agents' feedback on drafts: an append-only JSON-lines file trainers read to improve prompts and rules."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from copilot.errors import InputError

Verdict = Literal["used_as_is", "used_after_edit", "rejected"]
VERDICTS: tuple[Verdict, ...] = ("used_as_is", "used_after_edit", "rejected")
VERDICT_LABELS = {"used_as_is": "Used as-is", "used_after_edit": "Used after editing", "rejected": "Rejected"}
# One lock per file path across instances: the UI and a script may open separate stores on the same file.
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.Lock())


class FeedbackStore:
    """Append-only feedback records in one JSON-lines file, written durably one whole line at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = _lock_for(self.path.resolve())

    def record(
        self,
        verdict: Verdict,
        draft: str,
        final_text: str,
        reason: str | None,
        findings: list[dict[str, Any]],
        message_id: str,
    ) -> dict[str, Any]:
        """Append one feedback record and return it; the customer's message itself is never stored."""
        if verdict not in VERDICTS:
            raise InputError(f"Unknown feedback verdict {verdict!r}.", fix=f"use one of: {', '.join(VERDICTS)}")
        if not draft.strip() and not final_text.strip():
            raise InputError("There is no draft to give feedback on.", fix="draft a reply first")
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "message_id": message_id,
            "verdict": verdict,
            "reason": (reason or "").strip() or None,
            "draft": draft,
            "final_text": final_text,
            "edited": draft.strip() != final_text.strip(),
            "findings": [_slim(f) for f in findings],
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # A torn line from an earlier crash must not glue itself to this record.
            prefix = "\n" if self._ends_without_newline() else ""
            # One os.write of the whole line on an O_APPEND descriptor, then fsync: a crash leaves at most a torn
            # last line, which load() skips.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (prefix + line).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def _ends_without_newline(self) -> bool:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return False
        if size == 0:
            return False
        with self.path.open("rb") as handle:
            handle.seek(size - 1)
            return handle.read(1) != b"\n"

    def load(self) -> list[dict[str, Any]]:
        """All readable records, oldest first; a torn or corrupt line is skipped rather than failing the lot."""
        if not self.path.is_file():
            return []
        records = []
        with self._lock:
            raw = self.path.read_bytes()
        for line in raw.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and value.get("verdict") in VERDICTS:
                records.append(value)
        return records

    def summary(self, top: int = 10) -> dict[str, Any]:
        """Counts per verdict, rejection reasons, the most frequent finding rules and categories, and per day."""
        records = self.load()
        verdicts = Counter(r["verdict"] for r in records)
        reasons = Counter((r.get("reason") or "(no reason given)") for r in records if r["verdict"] == "rejected")
        rules: Counter[str] = Counter()
        categories: Counter[str] = Counter()
        for r in records:
            for f in r.get("findings") or []:
                if isinstance(f, dict):
                    rules[str(f.get("rule", "?"))] += 1
                    categories[str(f.get("category", "?"))] += 1
        per_day: dict[str, Counter[str]] = {}
        for r in records:
            per_day.setdefault(str(r.get("time", ""))[:10], Counter())[r["verdict"]] += 1
        return {
            "total": len(records),
            "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS},
            "rejection_reasons": reasons.most_common(top),
            "top_rules": rules.most_common(top),
            "top_categories": categories.most_common(top),
            "per_day": {day: {v: counts.get(v, 0) for v in VERDICTS} for day, counts in sorted(per_day.items())},
        }


def summary_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown for the workshop (reasons are agents' free text, so they are escaped)."""
    if not summary["total"]:
        return "No feedback recorded yet."
    lines = [f"**{summary['total']} feedback record(s).**", "", "| Verdict | Count |", "|---|---|"]
    lines += [f"| {VERDICT_LABELS[v]} | {n} |" for v, n in summary["verdicts"].items()]
    if summary["rejection_reasons"]:
        lines += ["", "**Why drafts were rejected**", ""]
        lines += [f"- {_md_escape(reason)} ({n})" for reason, n in summary["rejection_reasons"]]
    if summary["top_rules"]:
        lines += ["", "**Most frequent findings on drafts that got feedback**", "", "| Rule | Count |", "|---|---|"]
        lines += [f"| {_md_escape(rule)} | {n} |" for rule, n in summary["top_rules"]]
    if summary["per_day"]:
        lines += ["", "**Per day**", "", "| Day | As-is | After edit | Rejected |", "|---|---|---|---|"]
        lines += [
            f"| {day} | {c['used_as_is']} | {c['used_after_edit']} | {c['rejected']} |"
            for day, c in summary["per_day"].items()
        ]
    return "\n".join(lines)


def _slim(finding: dict[str, Any]) -> dict[str, Any]:
    keys = ("category", "severity", "rule", "start", "end", "text")
    return {k: finding.get(k) for k in keys if k in finding}


def _md_escape(text: str) -> str:
    import html

    return html.escape(" ".join(str(text).split())).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")
