"""Milvus administration: the store (the client), filters, schema, rows, capabilities, columns, index."""
