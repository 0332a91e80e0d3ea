"""Retrievers for chatbot frameworks, over the typed HTTP client (optional extras)."""
