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
            r"""refresh[_-]?token|access[_-]?token|authorization|consumer[_-]?secret|consumer[_-]?key)["']?\s*[:=]\s*)"""
            r"""("[^"]*"|'[^']*'|[^"'\s,}&]+)"""
        ),
        # A quoted value is hidden whole (it may contain spaces), keeping its quotes.
        lambda m: m.group(1) + (m.group(2)[0] + "***" + m.group(2)[0] if m.group(2)[0] in "\"'" else "***"),
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_traceback_formatter = logging.Formatter()


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # A traceback repeats the exception's message, so it is formatted here and scrubbed too;
        # formatters print a record's `exc_text` when it is set instead of formatting `exc_info` again.
        if record.exc_info and not record.exc_text:
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
