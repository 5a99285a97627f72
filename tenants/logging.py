"""A last line of defence: log records are scrubbed of anything shaped like a secret.

Code must not log secrets in the first place; this catches what slips through (an exception
message quoting a header, a third-party library logging a request)."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # Our own API keys: <prefix>_<12 hex>_<random>.
    (re.compile(r"\b([a-z]{2,16}_[0-9a-f]{12})_[A-Za-z0-9_\-]{20,}"), r"\1_***"),
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-|]{8,}"), r"\1 ***"),
    # key=value / "key": "value" pairs whose key names a secret.
    (
        re.compile(
            r"""(?i)(["']?(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|"""
            r"""refresh[_-]?token|access[_-]?token|authorization|consumer[_-]?secret)["']?\s*[:=]\s*)"""
            r"""(["']?)[^"'\s,}&]+"""
        ),
        r"\1\2***",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
