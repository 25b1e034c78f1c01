"""Custom actions served by the Rasa action server (rasa_sdk). One module per topic."""
