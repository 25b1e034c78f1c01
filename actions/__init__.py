"""Custom actions served by the Rasa action server (rasa_sdk). One module per topic."""
from .safety import install as _install_safety

_install_safety()
