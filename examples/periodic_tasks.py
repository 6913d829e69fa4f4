"""Periodic tasks of the README (``task-worker worker -s --import examples.periodic_tasks``)."""

from datetime import timedelta

from taskqueue import periodic, task


@periodic(cron="30 2 * * *", tz="Europe/Paris", misfire="skip")
@task(name="reports.nightly")
def nightly_report() -> str:
    return "report sent"


@periodic(every=timedelta(seconds=30), kwargs={"region": "eu"})
@task(name="inventory.sync", max_retries=0)
def sync_inventory(region: str) -> int:
    return len(region)


@task(name="cache.warm")
def warm_cache(*pages: str) -> int:
    return len(pages)
