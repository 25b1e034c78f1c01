"""The scheduler process. Jobs live in a persistent APScheduler job store in the database.

Today it runs the daily segment recomputation through the backend API; outreach jobs join it.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import httpx
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.settings import apply_env  # noqa: E402

log = logging.getLogger("scheduler")
TZ = "Asia/Shanghai"


def recompute_segments() -> None:
    """Daily: refresh loan statuses and customer risk/value tiers in the backend."""
    key = os.environ.get("SCHEDULER_API_KEY", "dev-scheduler-key")
    resp = httpx.post(f"{os.environ['BACKEND_URL']}/api/v1/segments/recompute", headers={"X-API-Key": key}, timeout=300)
    resp.raise_for_status()
    log.info("segments recomputed: %s", resp.json())


def build_scheduler(database_url: str) -> BlockingScheduler:
    scheduler = BlockingScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=database_url, tablename="scheduler_jobs")},
        job_defaults={"coalesce": True, "misfire_grace_time": 6 * 3600, "max_instances": 1},
        timezone=TZ,
    )
    scheduler.add_job(recompute_segments, CronTrigger(hour=2, minute=0, timezone=TZ),
                      id="recompute_segments", replace_existing=True)
    return scheduler


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = apply_env()
    scheduler = build_scheduler(env["DATABASE_URL"])
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("scheduler started")
    scheduler.start()


if __name__ == "__main__":
    main()
