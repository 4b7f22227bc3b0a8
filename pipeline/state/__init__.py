"""Shared Redis state: key names, fenced locks, the global quota, the generation counter."""
