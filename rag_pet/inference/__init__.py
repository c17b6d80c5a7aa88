"""Answering without Ray Serve: prompts, passage retrieval over the sharded index, decoding (closed-book, RAG-Token,
RAG-Sequence), adapters switched on one base model, and the spec of the run answered with.

In-process evaluation, Ray Data batch evaluation and the Serve deployments all answer through this package, so they
prompt, retrieve and decode identically.
"""
