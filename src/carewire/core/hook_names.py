"""Every hook name of the kernel, declared once (never spelt inline elsewhere).

Names go from general to specific, slash-separated. ``pre-`` hooks see stanzas
a local session sends, before routing; the others see stanzas being delivered
to an address of ours: ``…/host`` (the server itself), ``…/bare`` (an account),
``…/full`` (one resource).
"""

from __future__ import annotations

from typing import Final

# Outbound from a local session, before routing. Payload: StanzaEvent.
PRE_MESSAGE: Final = "pre-message"
PRE_PRESENCE: Final = "pre-presence"
PRE_IQ: Final = "pre-iq"

# Delivery to a local address. Payload: StanzaEvent.
MESSAGE_HOST: Final = "message/host"
MESSAGE_BARE: Final = "message/bare"
MESSAGE_FULL: Final = "message/full"
PRESENCE_HOST: Final = "presence/host"
PRESENCE_BARE: Final = "presence/bare"
PRESENCE_FULL: Final = "presence/full"

# A message for an account with no available resource. Payload: StanzaEvent.
MESSAGE_OFFLINE: Final = "message/offline"
# Offline storage kept a message (it is durable). Payload: StanzaEvent.
MESSAGE_STORED: Final = "message/stored"

# Multi-user chat (chat.DOMAIN). A groupchat message about to be broadcast to a
# room's occupants (handlers may add elements, e.g. a stanza-id). Payload:
# RoomMessageEvent.
MUC_GROUPCHAT: Final = "muc/groupchat"
# A room was created, or its subject, configuration or affiliations changed.
# Payload: RoomEvent.
MUC_ROOM_CHANGED: Final = "muc/room-changed"
# A room was destroyed. Payload: RoomEvent.
MUC_ROOM_DESTROYED: Final = "muc/room-destroyed"

# Delivery of a stanza to local sessions (one, or a room's occupants at once), just
# before it is written. Payload: DeliveryEvent. A handler drops or keeps back a copy
# by setting its entry of ``targets`` to None (e.g. blocking, client state).
SESSION_DELIVER: Final = "session/deliver"

# Session lifecycle. Payload: SessionEvent.
SESSION_BOUND: Final = "session/bound"
SESSION_INITIAL_PRESENCE: Final = "session/initial-presence"
SESSION_CLOSED: Final = "session/closed"
# A session's presence (availability, priority) or carbons setting changed: what
# other nodes of a cluster must know of it. Payload: SessionEvent.
SESSION_CHANGED: Final = "session/changed"
# The client said it is active or inactive (XEP-0352). Payload: SessionEvent.
SESSION_CLIENT_STATE: Final = "session/client-state"
# The connection of a bound session ended, cleanly or not. Payload:
# ConnectionLost (core/feature.py). A handler returning True keeps the session
# (XEP-0198: detached, waiting for resumption); otherwise the kernel ends it.
SESSION_CONNECTION_LOST: Final = "session/connection-lost"
# A session moved to a new stream (XEP-0198 resumption). Payload: SessionEvent.
SESSION_RESUMED: Final = "session/resumed"

# A clinician's response to an alert was recorded. Payload: AlertResponded.
ALERT_RESPONDED: Final = "alert/responded"
# An alert is recorded and about to be routed to the recipients coverage left, one copy
# each (so a push can leave for all of them at once). Synchronous handlers (fire_sync).
# Payload: AlertNotifying.
ALERT_NOTIFYING: Final = "alert/notifying"

# A contact was granted a subscription to an account's presence (the account's
# side gained 'from'). Payload: SubscriptionEvent.
PRESENCE_SUBSCRIBED: Final = "presence/subscribed"

# Federation. A stanza from another domain, before it is routed to an address of
# ours: a handler returning True has dealt with it (or refused it by raising
# StanzaError). Payload: StanzaEvent (origin None).
REMOTE_INBOUND: Final = "remote/inbound"
# A stanza was handed to the remote router for another domain (synchronous
# handlers). Payload: StanzaEvent (origin None).
REMOTE_SENT: Final = "remote/sent"
# A stanza for another domain was refused at once (federation off, domain not
# allowed, queue full); the sender gets the error. Payload: RemoteFailure.
REMOTE_FAILED: Final = "remote/failed"

# A user's roster (an item or a pending request) was written to the store: other
# nodes of a cluster forget their copy. Synchronous handlers. Payload: AccountEvent.
ROSTER_WRITTEN: Final = "roster/written"

# Accounts. Payload: AccountEvent.
ACCOUNT_REMOVED: Final = "account/removed"

# Server lifecycle. Payload: None.
SERVER_STARTED: Final = "server/started"
SERVER_STOPPING: Final = "server/stopping"
