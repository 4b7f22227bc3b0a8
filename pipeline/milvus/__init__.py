"""Milvus administration: the store (the only pymilvus importer), columns, index status and tuning."""
