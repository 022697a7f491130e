"""XML namespaces used by the protocol core and the features (RFC 6120 §4.9, XEPs)."""

from __future__ import annotations

STREAM = "http://etherx.jabber.org/streams"
CLIENT = "jabber:client"
SERVER = "jabber:server"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"  # RFC 7395
STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
STANZAS_ERR = "urn:ietf:params:xml:ns:xmpp-stanzas"
TLS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION = "urn:ietf:params:xml:ns:xmpp-session"
XML = "http://www.w3.org/XML/1998/namespace"
ROSTER = "jabber:iq:roster"
ROSTER_VER = "urn:xmpp:features:rosterver"
PRE_APPROVAL = "urn:xmpp:features:pre-approval"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
PING = "urn:xmpp:ping"
VCARD = "vcard-temp"
PRIVATE = "jabber:iq:private"
BLOCKING = "urn:xmpp:blocking"
BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
VERSION = "jabber:iq:version"
TIME = "urn:xmpp:time"
REGISTER = "jabber:iq:register"
REGISTER_FEATURE = "http://jabber.org/features/iq-register"
DELAY = "urn:xmpp:delay"
OFFLINE = "msgoffline"
DATA_FORMS = "jabber:x:data"
SM = "urn:xmpp:sm:3"  # XEP-0198
CSI = "urn:xmpp:csi:0"  # XEP-0352
CARBONS = "urn:xmpp:carbons:2"  # XEP-0280
FORWARD = "urn:xmpp:forward:0"  # XEP-0297
HINTS = "urn:xmpp:hints"  # XEP-0334
ACK = "urn:carewire:ack:0"  # acknowledgeable messages (docs/tracking.md)
EXPIRY = "urn:carewire:expiry:0"  # a message's expiry hint (docs/retention.md)
RETRACT = "urn:xmpp:message-retract:1"  # XEP-0424
MODERATE = "urn:xmpp:message-moderate:1"  # XEP-0425
DIALBACK = "jabber:server:dialback"  # XEP-0220
DIALBACK_FEATURE = "urn:xmpp:features:dialback"  # XEP-0220 §2.1
BIDI = "urn:xmpp:bidi"  # XEP-0288
BIDI_FEATURE = "urn:xmpp:features:bidi"
