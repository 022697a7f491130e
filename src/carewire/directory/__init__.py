"""The organisation directory: organisations, affiliations, users, invitations, groups, devices.

A service layer beside :mod:`carewire.security`: the data in :mod:`.model`,
the pure rules in :mod:`.policy`, CSV files in :mod:`.csvfiles`, the storage
shape in :mod:`.store` (implemented by :mod:`carewire.storage.directory`), the
in-memory snapshot for routing in :mod:`.index`, and the operations in
:mod:`.service` (one facet module per subject). docs/directory.md describes it.
"""
