"""The embedded stack: the servers it starts (Redis, Milvus, sandbox, workers) and their supervision."""
