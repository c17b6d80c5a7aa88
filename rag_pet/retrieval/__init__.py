"""Retrieval: FAISS indexes by factory string, versioned storage, Ray Data encoding, the sharded index, BM25.

Import from the submodules (`rag_pet.retrieval.sharded`, `.build`, ...): shard actors import only what
they use, so this package keeps its `__init__` free of torch and transformers.
"""
