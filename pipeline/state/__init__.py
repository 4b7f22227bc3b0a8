"""Shared Redis state: key names, fenced locks, the global quota, the generation counter, worker
heartbeats, and the start-up checks of Redis itself."""
