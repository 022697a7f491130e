"""The data platform's datasets: model, built-in definitions, registry, service, paths.

Everything a hospital's data is kept in: users, units, rooms, beds, patients,
assignments, conversations, messages, deliveries and the rest. See
``docs/datasets.md``.
"""
