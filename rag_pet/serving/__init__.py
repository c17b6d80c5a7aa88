"""Ray Serve research endpoints: retriever, generator with multiplexed adapters, and the RAG pipeline over HTTP."""
