"""The scheduler process: APScheduler with its jobs in the database (SQLAlchemyJobStore).

Jobs (scheduler.jobs): plan the day's outreach notices at start-up and every plan_every_minutes;
dispatch due notices every dispatch_seconds (OUTREACH_DISPATCH_SECONDS overrides it) with
OUTREACH_DISPATCHERS dispatcher threads, each with OUTREACH_DELIVERY_CONCURRENCY deliveries in flight
(scheduler.jobs.dispatch_notices): each is
rendered by the backend's code and delivered through the outbox (backend.services.outreach.outbox:
a bot message appended through Rasa's HTTP API), decisions too when they had to wait (the backend's
own outbox worker sends them as soon as they are due); keep the lease
(heartbeat); recompute segments daily at 02:00 through the backend API. Missed runs are coalesced
into one and dropped past misfire_grace_seconds (config/business.yml, ``outreach``); notices that
went stale meanwhile lapse by the outreach rules.

Business time is the backend's clock (backend.core.clock.Clock), built from the same settings:
APP_FROZEN_DATE, and OUTREACH_DEMO_TIME for demos (the backend shifts alike, so decisions taken in
the console and the scheduler's runs agree); the lease is kept on the real time.
"""
from __future__ import annotations

import logging
import signal
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import logscrub
from bot.settings import apply_env

if TYPE_CHECKING:
    from scheduler import jobs

log = logging.getLogger("scheduler")
TZ = "Asia/Shanghai"


def build_scheduler(database_url: str, rules, dispatch_seconds: int) -> BlockingScheduler:
    from scheduler import jobs

    cfg = rules.outreach
    scheduler = BlockingScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=database_url, tablename="scheduler_jobs")},
        job_defaults={"coalesce": True, "misfire_grace_time": cfg.misfire_grace_seconds, "max_instances": 1},
        timezone=TZ,
    )
    now = datetime.now().astimezone()
    scheduler.add_job(jobs.heartbeat, IntervalTrigger(seconds=max(1, cfg.lease_ttl_seconds // 3)),
                      id="outreach_lease", replace_existing=True, next_run_time=now)
    scheduler.add_job(jobs.plan_notices, IntervalTrigger(minutes=cfg.plan_every_minutes),
                      id="outreach_plan", replace_existing=True, next_run_time=now)
    scheduler.add_job(jobs.dispatch_notices, IntervalTrigger(seconds=dispatch_seconds),
                      id="outreach_dispatch", replace_existing=True, next_run_time=now)
    scheduler.add_job(jobs.recompute_segments, CronTrigger(hour=2, minute=0, timezone=TZ),
                      id="recompute_segments", replace_existing=True, misfire_grace_time=6 * 3600)
    return scheduler


def setup() -> tuple[BlockingScheduler, "jobs.Runtime"]:
    env = apply_env()
    from backend.core.clock import Clock
    from backend.core.config import effective_rules, get_settings, load_rules
    from backend.db import make_engine, make_sessionmaker
    from backend.services.outreach.sender import RasaSender
    from backend.services.rasa_api import RasaClient
    from scheduler import jobs

    settings = get_settings()
    rules = effective_rules(load_rules(settings.business_rules_path), settings)
    jobs.RUNTIME = jobs.Runtime(
        rules=rules, sessions=make_sessionmaker(make_engine(settings.database_url)),
        clock=Clock.from_settings(settings),  # the backend's clock, OUTREACH_DEMO_TIME included
        sender=RasaSender(RasaClient(settings.rasa_url, settings.rasa_api_token,  # a connection per delivery in flight
                                     max_connections=settings.outreach_dispatchers * settings.outreach_delivery_concurrency)),
        backend_url=env.get("BACKEND_URL", ""), api_key=env.get("SCHEDULER_API_KEY", "dev-scheduler-key"),
        dispatchers=settings.outreach_dispatchers, concurrency=settings.outreach_delivery_concurrency)
    dispatch_seconds = int(settings.outreach_dispatch_seconds or rules.outreach.dispatch_seconds)
    return build_scheduler(settings.database_url, rules, dispatch_seconds), jobs.RUNTIME


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logscrub.install(("apscheduler",))  # no phone, ID, card or code in the scheduler's log either
    # httpx logs every request URL at INFO: the conversation id in it is a phone number or an openid.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # a line per job run
    from backend.services.outreach import lease

    scheduler, runtime = setup()
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("scheduler %s started (business time %s)", runtime.holder, runtime.clock.now().isoformat(timespec="seconds"))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        with runtime.sessions() as db:
            lease.release(db, runtime.holder)
        log.info("scheduler %s stopped", runtime.holder)


if __name__ == "__main__":
    main()
