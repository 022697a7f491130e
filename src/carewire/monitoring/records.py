"""What committed writes say about deliveries, rule firings and the alert latency.

Theory of operation: :class:`RecordMeter` subscribes to the dataset service,
so it hears every committed write after its commit, off the routing path
(message tracking commits in batches from its own writer task). It looks at
two datasets only:

- DELIVERIES (one record per rule firing): a new record is a firing; a status
  that becomes ``Error`` is a rule error; the moment the firing is linked to its
  alert's MESSAGES record (``message``), the alert is *open* and its
  ``triggered_at`` — the commit of the record write that raised it — is kept.
- MESSAGE_DELIVERIES (one record per message and recipient): each of
  ``sent_at``, ``received_at``, ``displayed_at``, ``acknowledged`` and
  ``failed_at`` that becomes set counts once for its state. The first
  ``received_at`` of an alert's message — the first clinician's client that
  confirmed receipt (XEP-0184 or an XEP-0333 ``<received/>``) — ends the alert's
  latency: ``received_at − triggered_at`` goes into the histogram. An
  ``acknowledged`` closes the alert.

The link is written after the alert was sent, so a fast client's receipt can
commit before it: the first receipts of recent messages are remembered (a
bounded map) and matched when the link arrives.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta

from carewire.core.stats import ALERT_BUCKETS, LatencyBuckets
from carewire.datasets.model import ChangeKind, RecordChanged

#: MESSAGE_DELIVERIES fields and the delivery state each one records.
DELIVERY_STATES: dict[str, str] = {
    "sent_at": "sent",
    "received_at": "received",
    "displayed_at": "displayed",
    "acknowledged": "acknowledged",
    "failed_at": "failed",
}
#: Alerts kept open in memory at most (the oldest are forgotten first).
MAX_OPEN = 10_000
#: Receipts remembered while their alert's link may still be on its way.
MAX_EARLY_RECEIPTS = 4_096
#: An alert nobody acknowledged is no longer shown as open after this long.
OPEN_WINDOW = timedelta(hours=24)


class RecordMeter:
    """Counts delivery states, rule firings and errors; measures the alert latency."""

    def __init__(self) -> None:
        self.delivery_states: Counter[str] = Counter()
        self.firings: Counter[str] = Counter()  # by rule name
        self.errors: Counter[str] = Counter()  # by rule name
        self.alert_latency = LatencyBuckets(ALERT_BUCKETS)
        # Alert MESSAGES id → when its record was written; until its first receipt.
        self._awaiting: OrderedDict[int, datetime] = OrderedDict()
        # Alert MESSAGES id → when its record was written; until acknowledged.
        self._open: OrderedDict[int, datetime] = OrderedDict()
        # MESSAGES id → its first received_at, for links that come after the receipt.
        self._early: OrderedDict[int, datetime] = OrderedDict()

    #: The datasets it looks at (its subscription).
    DATASETS = ("MESSAGE_DELIVERIES", "DELIVERIES")

    def __call__(self, event: RecordChanged) -> None:
        """The dataset service's subscriber: look at the two datasets that matter."""
        if event.dataset == "MESSAGE_DELIVERIES":
            self._message_delivery(event)
        elif event.dataset == "DELIVERIES":
            self._firing(event)

    # -- open alerts ----------------------------------------------------------

    def open_alerts(self, now: datetime) -> list[datetime]:
        """When each open alert's record was written, oldest first (within the last day)."""
        cutoff = now - OPEN_WINDOW
        while self._open and next(iter(self._open.values())) < cutoff:
            self._open.popitem(last=False)
        return sorted(self._open.values())

    # -- events ---------------------------------------------------------------

    def _firing(self, event: RecordChanged) -> None:
        new, old = event.new or {}, event.old or {}
        rule = str(new.get("rule") or "")
        if event.kind is ChangeKind.CREATE:
            self.firings[rule] += 1
        if new.get("status") == "Error" and old.get("status") != "Error":
            self.errors[rule] += 1
        message, triggered = _id(new.get("message")), new.get("triggered_at")
        if message is None or _id(old.get("message")) == message:
            return
        if not isinstance(triggered, datetime):
            return
        _remember(self._open, message, triggered, MAX_OPEN)
        received = self._early.pop(message, None)
        if received is not None:
            self.alert_latency.observe(max(0.0, (received - triggered).total_seconds()))
        else:
            _remember(self._awaiting, message, triggered, MAX_OPEN)

    def _message_delivery(self, event: RecordChanged) -> None:
        new = event.new
        if new is None:
            return
        old: Mapping[str, object] = event.old or {}
        for name, state in DELIVERY_STATES.items():
            if new.get(name) is not None and old.get(name) is None:
                self.delivery_states[state] += 1
                if state == "received":
                    self._received(_id(new.get("message")), new.get(name))
                elif state == "acknowledged":
                    message = _id(new.get("message"))
                    if message is not None:
                        self._open.pop(message, None)

    def _received(self, message: int | None, at: object) -> None:
        if message is None or not isinstance(at, datetime):
            return
        triggered = self._awaiting.pop(message, None)
        if triggered is not None:
            self.alert_latency.observe(max(0.0, (at - triggered).total_seconds()))
        elif message not in self._early:
            _remember(self._early, message, at, MAX_EARLY_RECEIPTS)


def _id(value: object) -> int | None:
    """A link's record id (the service gives ints; anything else is no link)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _remember(into: OrderedDict[int, datetime], key: int, at: datetime, bound: int) -> None:
    into[key] = at
    if len(into) > bound:
        into.popitem(last=False)
