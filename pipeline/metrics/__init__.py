"""Metrics: the recorder workers count with (low), the Prometheus exporter that reads the ledger (high)."""
