"""The ledger: jobs and items in Redis, every state move one Lua script."""
