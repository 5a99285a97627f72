"""One JSON object per log line (`LOG_FORMAT=json`), for log collectors that index fields.

Each line has `time` (UTC, ISO 8601), `level`, `logger`, `message`, the log context
(`request_id`, `tenant`, `connection` when known: `config.log_context`), any `extra=` fields of the
call, and `exception` with the traceback when there is one. The handler's `RedactSecretsFilter` has
scrubbed the message and traceback already; they are scrubbed here again, with the extra fields,
so a handler configured without the filter still never writes a secret.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from tenants.logging import redact

from .log_context import current

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": None,
            "tenant": None,
            "connection": None,
        }
        line.update(current())
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = _plain(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    """A value JSON holds as it is, else its text; text is scrubbed of secrets."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else str(value))
