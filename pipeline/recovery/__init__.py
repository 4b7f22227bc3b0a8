"""Recovery from the embedding archive: ``vidsearch restore`` (archive -> Milvus, no Twelve Labs
call) and ``vidsearch archive export`` (Milvus -> archive, for collections older than it)."""
