"""Custom Rasa NLU components for Chinese borrower messages."""
