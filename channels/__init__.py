"""Rasa input channels: WeChat Official Account, SMS (Twilio) and the web chat.

Each connector only translates its protocol; the shared path (exactly-once claim, identity,
sending through the backend) is the backend client bot/backend.py, shared with the actions.
"""
