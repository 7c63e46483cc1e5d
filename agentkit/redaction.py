"""One redaction for every string that leaves a backend: error messages, event texts, logs, results.

Two rules, applied together by `Redactor.redact`:
- Credential shapes are masked whatever the key: the value after `Authorization:`, `Bearer `, `api_key=`,
  `x-api-key:` (a server or proxy echoing the request's headers). This needs no knowledge of the key, so it also
  covers a key too short to search for.
- The literal key is masked wherever it occurs, if it is at least `MIN_SECRET_LENGTH` characters long. A shorter
  "key" (`x`, `EMPTY`, a test token) protects nothing (it can be guessed in seconds) and searching for it would
  destroy ordinary text ("thinking" with key "k" became "thin***ing"); such a key can still only leak in the
  credential shapes above, because agentkit never puts request headers into a message.

Streamed model text is masked by `StreamRedactor`, which holds back the few trailing characters that could be the
start of the key, so a key split across two chunks is caught too.
"""

from __future__ import annotations

import re

MIN_SECRET_LENGTH = 8
MASK = "***"

_CREDENTIAL = re.compile(
    r"""(?ix)
    (?P<name>\b(?:proxy-)?authorization|\bx-api-key|\bapi[-_]?key|\baccess[-_]?token)
    (?P<sep>["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token)\s+)?)
    (?P<value>[^\s"',;&}\]\)]+)
    """
)
_BEARER = re.compile(r"\b(Bearer|BEARER|bearer)(\s+)(?!\*\*\*)([^\s\"',;&}\]\)]+)")


class Redactor:
    """Masks one secret (and every credential shape) in text. The secret never shows in its repr."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str | None) -> None:
        self._secret = secret or ""

    def __repr__(self) -> str:
        return "Redactor(***)" if self._secret else "Redactor()"

    @property
    def searchable(self) -> bool:
        return len(self._secret) >= MIN_SECRET_LENGTH

    def redact(self, text: str) -> str:
        if not text:
            return text
        if self.searchable:
            text = text.replace(self._secret, MASK)
        text = _CREDENTIAL.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)
        return _BEARER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self._secret if self.searchable else "")


class StreamRedactor:
    """Masks a secret in text that arrives in pieces. `feed` returns what is safe to show now; `flush` the rest."""

    __slots__ = ("_held", "_secret")

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._held = ""

    def feed(self, piece: str) -> str:
        if not self._secret:
            return piece
        text = (self._held + piece).replace(self._secret, MASK)
        keep = 0
        for n in range(min(len(self._secret) - 1, len(text)), 0, -1):
            if self._secret.startswith(text[-n:]):
                keep = n
                break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held
