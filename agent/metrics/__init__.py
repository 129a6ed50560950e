"""Prometheus metrics: the fleet read from the database at scrape time, and the conductor's own events.

``fleet``: a collector that kiln-api serves at /metrics; every scrape counts nodes, GPUs and
heartbeat ages with a few GROUP BY queries, so several API processes report the same fleet.
``conductor``: histograms and counters of what only a conductor sees (provision phases, failures,
RPC handling, inventory drift), served on [conductor]metrics_port.
"""
