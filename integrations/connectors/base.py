"""The contract every connector keeps.

A connector is built from a `Connection` and offers:

- `check()` → `CheckResult`: are the credentials valid, which permissions are granted and missing,
  a sample count per stream, the latency, and on failure a platform-specific hint. Never retries.
- `read(stream, cursor, full=False)` → an iterator of `Page`s of normalised records
  (`commerce.records`). Each page carries the cursor to store once the page is committed, so a
  sync that stops resumes after the last committed page.

Records a connector cannot map are yielded as `Failed(external_id, payload, error)` inside the
page, so the sync engine quarantines them and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from ..errors import IntegrationError
from ..http import HttpClient, RateBudget

if TYPE_CHECKING:
    from commerce.pushes import FulfilmentPush, StockPush
    from commerce.records import Record

    from ..crm import PushOutcome
    from ..models import Connection


@dataclass
class Failed:
    """A platform record that could not be mapped; kept with its payload for a person to see."""

    external_id: str
    payload: Any
    error: str


@dataclass
class Page:
    records: list[Record | Failed]
    # The stream's cursor after this page: stored only after the page's records are committed.
    cursor: dict[str, Any]
    # Optional progress: records seen so far and the total, when the platform says.
    total: int | None = None


@dataclass
class CheckResult:
    ok: bool
    message: str = ""
    hint: str = ""
    error_code: str = ""
    granted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    latency_ms: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "message": self.message,
            "hint": self.hint,
            "error_code": self.error_code,
            "granted": self.granted,
            "missing": self.missing,
            "samples": self.samples,
            "warnings": self.warnings,
            "latency_ms": self.latency_ms,
            "details": self.details,
        }

    @classmethod
    def failure(cls, error: IntegrationError, latency_ms: int | None = None) -> CheckResult:
        return cls(ok=False, message=error.message, hint=error.hint, error_code=error.code, latency_ms=latency_ms)


class Connector:
    """Base for one platform. Subclasses set `streams` and implement `_check` and `read`; those
    that take changes back implement `fulfil` and `set_stock` (commerce.pushes)."""

    streams: tuple[str, ...] = ()
    # Streams the hub writes to the platform instead of reading (a CRM's `contacts`): the sync
    # engine hands them to `push` a batch at a time (integrations.crm).
    push_streams: tuple[str, ...] = ()
    push_batch_size: int = 100
    # Hub carrier codes (commerce.carriers) this platform accepts, and the name it knows each by.
    carrier_names: dict[str, str] = {}

    def __init__(self, connection: Connection, *, client: HttpClient | None = None) -> None:
        self.connection = connection
        self.credentials = connection.credentials or {}
        spec = connection.spec
        self.budget = RateBudget(f"connection:{self.cache_id}", spec.rate_limit, spec.rate_burst)
        if client is None:
            client = HttpClient(budget=self.budget, allow_private=settings.INTEGRATIONS_ALLOW_PRIVATE_URLS)
        # An injected client (tests, benchmarks) still speaks this platform's hints.
        client.hints = self.hints()
        self.client = client

    @property
    def cache_id(self) -> str:
        """What this connection's shared state (rate budget, cost bucket, cached facts) is keyed by:
        its id, or for an unsaved one (credentials tested before saving) its own uuid, so such tests
        never share state with each other or with a saved connection."""
        return str(self.connection.pk) if self.connection.pk else f"unsaved-{self.connection.uuid}"

    # --- What each connector provides ---

    def hints(self):
        from ..http import Hints

        return Hints()

    def _check(self) -> CheckResult:
        raise NotImplementedError

    def read(self, stream: str, cursor: dict[str, Any] | None, *, full: bool = False) -> Iterator[Page]:
        raise NotImplementedError

    def parse(self, stream: str, payload: Any) -> Record:
        """Map one platform payload of `stream` to a normalised record; raise on a malformed one.
        `read` uses it for every item (through `parse_all`), and the admin's "retry" on a
        quarantined record calls it again on the stored payload."""
        raise NotImplementedError

    def parse_all(self, stream: str, payloads: list[Any], id_of=lambda p: p.get("id")) -> list[Record | Failed]:
        """Parse a page's payloads; one that fails becomes `Failed` instead of stopping the page."""
        out: list[Record | Failed] = []
        for payload in payloads:
            try:
                out.append(self.parse(stream, payload))
            except Exception as exc:  # a malformed record is quarantined, never fatal
                try:
                    external_id = str(id_of(payload) or "")
                except Exception:
                    external_id = ""
                out.append(Failed(external_id, payload, f"{type(exc).__name__}: {exc}"))
        return out

    def fulfil(self, push: FulfilmentPush) -> str:
        """Create the fulfilment (tracking number, carrier, lines) on the platform; returns the
        platform's id for it. Raises IntegrationError when the platform refuses."""
        from ..errors import ConfigurationError

        raise ConfigurationError(f"{self.connection.get_platform_display()} cannot take fulfilments from the hub yet.")

    def set_stock(self, push: StockPush) -> str:
        """Set the SKU's available quantity on the platform; returns the platform's id for the item."""
        from ..errors import ConfigurationError

        raise ConfigurationError(f"{self.connection.get_platform_display()} cannot take stock levels from the hub yet.")

    def push(self, stream: str, contacts: list) -> PushOutcome:
        """Upsert one batch of `commerce.exports.Contact` (by email) on the platform; returns what it
        did. Raises IntegrationError when the platform refuses the whole batch."""
        raise NotImplementedError(f"{self.connection.get_platform_display()} takes no {stream} from the hub.")

    def platform_carrier(self, code: str) -> str:
        """This platform's name for a hub carrier code; a carrier it does not accept is refused
        with the list it does."""
        from commerce.carriers import CARRIERS

        from ..errors import ConfigurationError

        if code in self.carrier_names:
            return self.carrier_names[code]
        accepted = ", ".join(CARRIERS[c].name for c in self.carrier_names if c in CARRIERS)
        raise ConfigurationError(
            f"{self.connection.get_platform_display()} does not accept the carrier “{code}”.",
            hint=f"Accepted: {accepted}." if accepted else "",
        )

    # --- Shared behaviour ---

    def check(self) -> CheckResult:
        """Run the connector's check, timed, and turn any error into a failed result."""
        started = time.monotonic()
        try:
            result = self._check()
        except IntegrationError as error:
            return CheckResult.failure(error, latency_ms=int((time.monotonic() - started) * 1000))
        result.latency_ms = int((time.monotonic() - started) * 1000)
        return result

    def credential(self, name: str) -> str:
        from ..errors import ConfigurationError

        value = (self.credentials.get(name) or "").strip()
        if not value:
            label = next((c.label for c in self.connection.spec.credentials if c.name == name), name)
            raise ConfigurationError(f"The “{label}” credential is missing.", hint="Fill it in on the connection.")
        return value
