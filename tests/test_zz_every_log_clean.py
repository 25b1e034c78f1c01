"""Every log the test run wrote — each stack's backend, Rasa, action server and scheduler, the
channel fakes, the production profile — carries no full phone, ID or card number, no one-time code and
no line longer than the scrubber's limit (bot/logscrub.py). Named to run after every other module of
`make test`: it reads the whole session's temporary directory."""
from __future__ import annotations

import pytest

from tests.e2e.test_zz_logs_clean import leaks_in


def test_no_log_of_this_run_holds_personal_numbers(tmp_path_factory):
    logs = sorted(tmp_path_factory.getbasetemp().rglob("*.log"))
    if not logs:
        pytest.skip("no stack ran in this session (run with the whole suite)")
    problems = leaks_in(logs)
    assert not problems, "\n".join(problems[:30])
