"""HL7 v2 adapters: MLLP framing and listener, acknowledgements, and the ADT feed.

``mllp.py`` (framing, listener, client) and ``ack.py`` (original-mode
acknowledgements) are shared by every HL7 kind; each feed (ADT, alarms) builds
on them.
"""
