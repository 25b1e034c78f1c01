"""bot/logscrub.py in the backend's environment (the backend installs it in backend/main.py): the same
tests as tests/bot/test_logscrub.py, which runs them in the bot's."""
from tests.bot.test_logscrub import *  # noqa: F401,F403
