"""The embedding archive: every segment written to Milvus, also kept as Parquet files.

``store.EmbeddingArchive`` appends one writer batch per call, scans a collection back with one row
per primary key (latest append wins), counts rows per item, describes and compacts collections, on
a local directory or on S3-compatible object storage (``docs/archive.md``).
"""
