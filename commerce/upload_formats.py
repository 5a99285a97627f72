"""Reading uploaded files row by row, and reading the values in them.

Every reader streams: it holds one chunk of the file and one row at a time, never the whole
file, so a file of any size is read in bounded memory. A row is `(number, {column: text})`; the
number is what a person finds in the file (the spreadsheet row for CSV, where the header is row 1;
the record's position for JSON and XML). Rows whose cells are all empty are skipped.

- CSV: any delimiter (sniffed from the start of the file), UTF-8 with or without BOM, UTF-16
  with BOM, or Windows-1252 when the start of the file is not UTF-8.
- JSON: a top-level array of objects, or one object after another (JSON Lines). Nested objects
  become dotted columns (`customer.email`); lists stay JSON text.
- XML: the repeated child elements of the root are the rows; their attributes and child elements
  are the columns (nested ones dotted). A DOCTYPE is refused, so no entity is ever expanded.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from pathlib import PurePath
from typing import IO, Any
from zoneinfo import ZoneInfo

CHUNK = 64 * 1024
MAX_RECORD_CHARS = 1024 * 1024  # one JSON or XML record; bounds memory on a malformed file
MAX_FIELDS = 1000
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".xml": "xml",
}

Row = tuple[int, dict[str, str]]


class UploadError(ValueError):
    """The file cannot be read (wrong format, malformed, refused). The message is for people."""


def format_for(filename: str) -> str | None:
    return EXTENSIONS.get(PurePath(filename).suffix.lower())


def read_rows(binary: IO[bytes], fmt: str) -> Iterator[Row]:
    readers = {"csv": csv_rows, "json": json_rows, "xml": xml_rows}
    return readers[fmt](binary)


def _nonblank(data: dict[str, str]) -> bool:
    return any(value.strip() for value in data.values())


# --- CSV ------------------------------------------------------------------------------------------


def csv_rows(binary: IO[bytes]) -> Iterator[Row]:
    head = binary.read(8192)
    binary.seek(0)
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UploadError("This is not a CSV text file (it contains binary data).")
    encoding = _text_encoding(head)
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    try:
        reader = csv.reader(text, delimiter=_delimiter(head.decode(encoding, errors="ignore")))
        header = next(reader, None)
        if header is None:
            return
        columns = _unique_columns(header)
        for number, values in enumerate(reader, start=2):
            data = {column: (values[i] if i < len(values) else "") for i, column in enumerate(columns)}
            if _nonblank(data):
                yield number, data
    except UnicodeDecodeError as error:
        raise UploadError(f"The file is not valid {encoding} text ({error.reason}).") from None
    except csv.Error as error:
        raise UploadError(f"The CSV file is malformed: {error}.") from None
    finally:
        text.detach()


def _text_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"  # what spreadsheet programs on Windows write
    return "utf-8"


def _delimiter(sample: str) -> str:
    # Only whole lines: a line cut in the middle misleads the sniffer.
    lines = sample.splitlines()[:-1] or sample.splitlines()
    try:
        return csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _unique_columns(header: list[str]) -> list[str]:
    columns: list[str] = []
    for i, name in enumerate(header, start=1):
        name = name.strip() or f"column {i}"
        candidate, n = name, 2
        while candidate in columns:
            candidate, n = f"{name} ({n})", n + 1
        columns.append(candidate)
    return columns


# --- JSON -----------------------------------------------------------------------------------------


def json_rows(binary: IO[bytes]) -> Iterator[Row]:
    text = io.TextIOWrapper(binary, encoding="utf-8-sig")
    try:
        for number, value in enumerate(_json_values(text), start=1):
            if not isinstance(value, dict):
                raise UploadError(f"Record {number} is not a JSON object: a JSON upload is a list of objects.")
            data = _flatten(value)
            if _nonblank(data):
                yield number, data
    except UnicodeDecodeError:
        raise UploadError("The JSON file is not UTF-8 text.") from None
    finally:
        text.detach()


class _JsonStream:
    """The values of a JSON array, or of whitespace-separated JSON values, read chunk by chunk
    with `raw_decode`: only the record being decoded is ever in memory."""

    def __init__(self, text: IO[str]) -> None:
        # Numbers stay text, exactly as written: the value parsers decide what they are.
        self.decoder = json.JSONDecoder(parse_float=str, parse_int=str)
        self.text, self.buf, self.pos, self.eof = text, "", 0, False

    def fill(self) -> bool:
        chunk = "" if self.eof else self.text.read(CHUNK)
        self.eof = not chunk
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return bool(chunk)

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end of the file), left unread."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos].isspace():
                self.pos += 1
            if self.pos < len(self.buf) or not self.fill():
                return self.buf[self.pos : self.pos + 1]

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as error:
                if len(self.buf) - self.pos > MAX_RECORD_CHARS:
                    raise UploadError("A JSON record is larger than 1 MB, or the JSON is malformed.") from None
                if self.eof:
                    raise UploadError(f"The JSON is malformed: {error.msg}.") from None
                self.fill()
                continue
            # A value that ends with the buffer may continue in the next chunk (a number).
            if end == len(self.buf) and not self.eof and self.fill():
                continue
            self.pos = end
            return value


def _json_values(text: IO[str]) -> Iterator[Any]:
    stream = _JsonStream(text)
    if stream.peek() != "[":
        while stream.peek():
            yield stream.value()
        return
    stream.pos += 1
    if stream.peek() == "]":
        return
    while True:
        yield stream.value()
        separator = stream.peek()
        stream.pos += 1
        if separator == "]":
            break
        if separator != ",":
            raise UploadError("The JSON array is malformed: expected “,” or “]” between records.")
    if stream.peek():
        raise UploadError("The JSON file has data after its closing “]”.")


def _flatten(value: dict, prefix: str = "", into: dict[str, str] | None = None) -> dict[str, str]:
    into = {} if into is None else into
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            _flatten(item, f"{name}.", into)
        else:
            into[name] = _text(item)
    if len(into) > MAX_FIELDS:
        raise UploadError(f"A record has more than {MAX_FIELDS} fields.")
    return into


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


# --- XML ------------------------------------------------------------------------------------------


class _XmlRows:
    """An ElementTree parser target that turns each child of the root into a flat row, building
    no element tree at all; finished rows wait in `rows` until the reader takes them."""

    def __init__(self) -> None:
        self.rows: deque[dict[str, str]] = deque()
        self.depth = 0
        self.row: dict[str, str] = {}
        self.size = 0
        # One entry per open element inside a row: [dotted name, text parts, has child elements]
        self.open: list[list[Any]] = []

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise UploadError("XML files with a DOCTYPE declaration are refused (entities are not allowed).")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 2:
            self.row, self.size = {}, 0
            self._attributes("", attrib)
        elif self.depth > 2:
            parent = f"{self.open[-1][0]}." if self.open else ""
            if self.open:
                self.open[-1][2] = True
            name = parent + _local(tag)
            self.open.append([name, [], False])
            self._attributes(f"{name}.", attrib)

    def data(self, text: str) -> None:
        if self.open:
            self.size += len(text)
            if self.size > MAX_RECORD_CHARS:
                raise UploadError("An XML record is larger than 1 MB.")
            self.open[-1][1].append(text)

    def end(self, tag: str) -> None:
        if self.depth > 2:
            name, parts, has_children = self.open.pop()
            if not has_children:
                self._set(name, "".join(parts).strip())
        elif self.depth == 2:
            self.rows.append(self.row)
            self.row = {}
        self.depth -= 1

    def close(self) -> None:
        return None

    def _attributes(self, prefix: str, attrib: dict[str, str]) -> None:
        for key, value in attrib.items():
            self._set(prefix + _local(key), value)

    def _set(self, name: str, value: str) -> None:
        if name not in self.row and len(self.row) >= MAX_FIELDS:
            raise UploadError(f"An XML record has more than {MAX_FIELDS} fields.")
        if value or name not in self.row:
            self.row[name] = value


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_rows(binary: IO[bytes]) -> Iterator[Row]:
    target = _XmlRows()
    # Safe against entity attacks: the target refuses any DOCTYPE, the only place entities are
    # declared, before expat reads the declarations (and expat never fetches external ones).
    parser = ET.XMLParser(target=target)  # noqa: S314
    number = 0
    while True:
        chunk = binary.read(CHUNK)
        try:
            if chunk:
                parser.feed(chunk)
            else:
                parser.close()
        except ET.ParseError as error:
            raise UploadError(f"The XML is malformed: {error}.") from None
        while target.rows:
            number += 1
            data = target.rows.popleft()
            if _nonblank(data):
                yield number, data
        if not chunk:
            return


# --- Values ---------------------------------------------------------------------------------------


class ValueProblem(ValueError):
    """A cell that cannot be read as what its column should hold. The message is for people."""


_MONEY_JUNK = re.compile(r"[\s$€£¥'\u00a0]|^[A-Z]{3}\s*|\s*[A-Z]{3}$")


def parse_decimal(text: str) -> Decimal:
    """1234.5, 1,234.50, 1.234,50, 12,50, $12.50, 12.50 USD, (12.50) for negative."""
    cleaned = _MONEY_JUNK.sub("", text.strip().upper())
    negative = cleaned.startswith("(") and cleaned.endswith(")")
    cleaned = cleaned.strip("()")
    if "," in cleaned and "." in cleaned:
        thousands = "," if cleaned.rfind(",") < cleaned.rfind(".") else "."
        cleaned = cleaned.replace(thousands, "").replace(",", ".")
    elif "," in cleaned:
        is_thousands = re.fullmatch(r"-?\d{1,3}(,\d{3})+", cleaned)
        cleaned = cleaned.replace(",", "" if is_thousands else ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueProblem(f"“{text}” is not a number.") from None
    if not value.is_finite() or abs(value) >= Decimal("1e14"):
        raise ValueProblem(f"“{text}” is not a usable amount.")
    return (-value if negative else value).quantize(Decimal("0.0001"))


def parse_int(text: str) -> int:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueProblem(f"“{text}” is not a whole number.") from None
    if not value.is_finite() or value != value.to_integral_value() or abs(value) > 10**9:
        raise ValueProblem(f"“{text}” is not a whole number.")
    return int(value)


_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%Y%m%d"]
_TIME_FORMATS = ["", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p"]


def parse_datetime(text: str, *, tz: ZoneInfo, day_first: bool = False) -> datetime:
    """ISO 8601 (with or without time and offset), RFC 2822, and common spreadsheet forms. A
    date without an offset is in the tenant's time zone; 03/04/2025 is read by `day_first`."""
    value = text.strip()
    parsed = _iso(value) or _rfc2822(value) or _common(value, day_first)
    if parsed is None:
        raise ValueProblem(f"“{text}” is not a date (use e.g. 2025-03-31 or 2025-03-31T14:05:00Z).")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(ZoneInfo("UTC"))


def _iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            return datetime.combine(date.fromisoformat(value), time())
        except ValueError:
            return None
    return parsed


def _rfc2822(value: str) -> datetime | None:
    if "," not in value and not value[:3].isalpha():
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _common(value: str, day_first: bool) -> datetime | None:
    value = re.sub(r"\s+", " ", value.replace(",", ""))
    # An ambiguous 03/04/2025 is read the way the person chose; 31/03/2025 can only be day first.
    days, months = ["%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y"], ["%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y"]
    for date_format in _DATE_FORMATS + (days + months if day_first else months + days):
        for time_format in _TIME_FORMATS:
            try:
                return datetime.strptime(value, date_format + time_format)
            except ValueError:
                continue
    return None


_BOOLEANS = {
    "true": True,
    "yes": True,
    "y": True,
    "1": True,
    "subscribed": True,
    "opted in": True,
    "opt-in": True,
    "false": False,
    "no": False,
    "n": False,
    "0": False,
    "unsubscribed": False,
    "not subscribed": False,
    "opted out": False,
    "opt-out": False,
}


def parse_bool(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueProblem(f"“{text}” is not yes or no.") from None


def parse_currency(text: str) -> str:
    code = text.strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ValueProblem(f"“{text}” is not a three-letter currency code such as USD.")
    return code


def parse_country(text: str) -> str:
    code = text.strip().upper()
    if len(code) != 2 or not code.isalpha() or not code.isascii():
        raise ValueProblem(f"“{text}” is not a two-letter country code such as US.")
    return code
