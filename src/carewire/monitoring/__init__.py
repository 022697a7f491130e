"""Monitoring: Prometheus ``/metrics`` and the console dashboard's live figures.

See docs/monitoring.md.

- :mod:`.records` counts what committed writes say (deliveries, rule firings, the alert latency);
- :mod:`.exporter` turns the server's counters into metric families when scraped;
- :mod:`.endpoint` serves them behind a bearer token, on the HTTPS port or a loopback port;
- :mod:`.status` gathers the dashboard's snapshot.
"""
