"""The DataUpdate adapter: rule actions that create or update dataset records.

A rule on NURSE_CALLS can set ``status=Escalated`` on the triggering record,
``room.status=Busy`` on a linked record, or create a record elsewhere; the
writes go through the dataset service, so they trigger rules in turn.
"""

from __future__ import annotations

from carewire.adapters.base import AdapterKind
from carewire.adapters.dataupdate.actions import ACTIONS

COMPONENT = "DataUpdate"

KIND = AdapterKind(
    component=COMPONENT,
    description="Creates and updates dataset records from rules.",
    actions=ACTIONS,
)
