"""Sentiment and intent signals for inbound text (the model arrives with the intelligence issue)."""
