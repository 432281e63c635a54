"""PII masking for calls to models off this machine: mask before the call, restore in the draft."""

from __future__ import annotations

import re
from urllib.parse import urlparse

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}

# Order matters: cards before phones (a card number also looks like a long phone number).
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")),
    (
        "ACCOUNT",
        re.compile(
            r"(?i)\b(?:account|acct|customer|member|policy|contract)(?:\s+(?:no|number|#|id))?\.?[:#]?\s*"
            r"([A-Z0-9-]{6,20})\b"
        ),
    ),
    (
        "PHONE",
        re.compile(r"(?<![\w@-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}(?!\w)"),
    ),
    (
        "ADDRESS",
        re.compile(
            r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|"
            r"Court|Ct|Way|Place|Pl|Square|Sq|Terrace|Close|Crescent|Strasse|Straße|Gasse|Weg)\b\.?(?:,?\s+(?:Apt|Flat|Unit|"
            r"Suite)\.?\s*\w+)?"
        ),
    ),
]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class Masker:
    """Masks PII with numbered placeholders, consistently across the prompts of one request, and restores it."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._counters: dict[str, int] = {}

    def _placeholder(self, kind: str, value: str) -> str:
        if value not in self._tokens:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            token = f"[{kind}_{self._counters[kind]}]"
            self._tokens[value] = token
            self.mapping[token] = value
        return self._tokens[value]

    def mask(self, text: str) -> str:
        """Replace emails, card, IBAN, account and phone numbers and street addresses with placeholders."""
        for kind, pattern in _PATTERNS:

            def replace(match: re.Match[str], kind: str = kind) -> str:
                value = match.group(1) if kind == "ACCOUNT" else match.group(0)
                digits = re.sub(r"\D", "", value)
                if kind == "CARD" and not _luhn(digits):
                    return match.group(0)
                if kind == "PHONE" and not 7 <= len(digits) <= 15:
                    return match.group(0)
                if kind == "ACCOUNT" and not re.search(r"\d", value):
                    return match.group(0)
                token = self._placeholder(kind, value)
                return match.group(0).replace(value, token) if kind == "ACCOUNT" else token

            text = pattern.sub(replace, text)
        return text

    def restore(self, text: str) -> str:
        """Put the original values back wherever the model repeated a placeholder."""
        for placeholder, original in self.mapping.items():
            text = text.replace(placeholder, original)
        return text


def is_local_endpoint(base_url: str | None) -> bool:
    """True when the model endpoint runs on this machine (the embedded server or a loopback URL)."""
    if not base_url:
        return False
    host = urlparse(base_url if "://" in base_url else f"http://{base_url}").hostname or ""
    return host in _LOOPBACK or host.startswith("127.")


def should_redact(mode: str, base_url: str | None, embedded: bool) -> bool:
    """`auto` masks only when the text would leave this machine."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    return not embedded and not is_local_endpoint(base_url)
