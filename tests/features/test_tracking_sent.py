"""What the tracker keeps of a recent message: who it was for and who got it already."""

from __future__ import annotations

import gc

from carewire.features.tracking.service import (
    Sent,
    addressed_to,
    recipients_of,
    with_delivery,
)


def test_a_recipient_is_served_once_and_others_never() -> None:
    sent: Sent = (recipients_of(("bob@h",)), None)
    assert addressed_to(sent, "bob@h") and not addressed_to(sent, "bo")  # not a substring test
    served = with_delivery(sent, "bob@h")
    assert served is not None and served[1] == "bob@h"
    assert with_delivery(served, "bob@h") is None  # a second copy is not a delivery
    assert with_delivery(sent, "carol@h") is None  # not a recipient


def test_a_message_to_many_notes_each_recipient_once() -> None:
    to = recipients_of(("bob@h", "carol@h", "dan@h"))
    sent: Sent = (to, None)
    first = with_delivery(sent, "bob@h")
    assert first is not None
    second = with_delivery(first, "carol@h")
    assert second is not None and second[1] == {"bob@h", "carol@h"}
    third = with_delivery(second, "dan@h")
    assert third is second  # from the second on, one set changed in place
    assert with_delivery(third, "carol@h") is None
    assert third[1] == {"bob@h", "carol@h", "dan@h"}


def test_a_served_one_to_one_entry_is_not_walked_by_the_garbage_collector() -> None:
    sent: Sent = (recipients_of(("bob@h",)), None)
    served = with_delivery(sent, "bob@h")
    gc.collect()
    assert served is not None and not gc.is_tracked(served)
    many: Sent = (recipients_of(("bob@h", "carol@h")), None)
    gc.collect()
    assert gc.is_tracked(many)  # holds a frozenset: tracked, as before
