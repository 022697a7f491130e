"""Adapters: kinds of integration (XMPP, DataUpdate, …) and their configured instances.

Each kind lives in its own folder and registers a :class:`~.base.AdapterKind`
(settings schema, required datasets, rule actions, optional runtime). The
:class:`~.manager.AdapterManager` keeps the instances and supervises them.
"""
