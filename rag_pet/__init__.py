"""rag_pet: compare RAG, full fine-tuning, PET and hybrids on Ray."""

__version__ = "0.1.0"
