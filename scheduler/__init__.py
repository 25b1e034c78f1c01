"""Proactive outreach and daily jobs, run by APScheduler in its own process."""
