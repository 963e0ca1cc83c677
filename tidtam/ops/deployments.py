"""Serve the deployments declared in prefect.yaml from this process (one-machine mode).

`tidtam serve` starts this as a child; for many machines use `prefect deploy --all` + workers.
Before serving, it creates or updates the automations that watch the escalation flows
(tidtam/ops/automations.py), which need the `ops-alert` deployment to exist.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from uuid import UUID

import yaml
from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.schedules import Cron

from tidtam.infra.paths import PREFECT_YAML
from tidtam.ops.automations import COMPILE, OPS_ALERT, WATCHED_FLOWS, ensure_automations

DEFAULT_TIMEZONE = "Asia/Bangkok"


def load_flow(entrypoint: str):
    """Import `flows/file.py:flow_name` as the module `flows.file` (flows/ is a package)."""
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def _entries(path: Path = PREFECT_YAML) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]


def schedules_of(deployment_name: str, path: Path = PREFECT_YAML) -> list[tuple[str, str]]:
    """(cron, timezone) of each schedule prefect.yaml gives the deployment; [] when it has none."""
    for entry in _entries(path):
        if entry["name"] == deployment_name:
            return [(s["cron"], s.get("timezone", DEFAULT_TIMEZONE))
                    for s in entry.get("schedules") or []]
    raise KeyError(f"no deployment named {deployment_name!r} in {path}")


def concurrency_of(entry: dict) -> ConcurrencyLimitConfig | None:
    """prefect.yaml's ``concurrency_limit`` (a number, or ``{limit, collision_strategy}``) as
    `serve` takes it, so a served deployment runs one at a time just as a deployed one does."""
    limit = entry.get("concurrency_limit")
    if limit is None:
        return None
    if isinstance(limit, int):
        return ConcurrencyLimitConfig(limit=limit)
    return ConcurrencyLimitConfig.model_validate(limit)


def deployments_from_yaml(path: Path = PREFECT_YAML) -> list:
    """Each deployment of prefect.yaml, with its cron schedules and concurrency limit, ready for
    `serve`."""
    result = []
    for entry in _entries(path):
        schedules = [Cron(s["cron"], timezone=s.get("timezone", DEFAULT_TIMEZONE))
                     for s in entry.get("schedules") or []]
        flow = load_flow(entry["entrypoint"])
        result.append(flow.to_deployment(name=entry["name"], schedules=schedules,
                                         tags=entry.get("tags"),
                                         description=entry.get("description"),
                                         concurrency_limit=concurrency_of(entry)))
    return result


def watch_the_flows(deployments: list) -> None:
    """Register the `ops-alert` and `compile-provincial-report` deployments, then the
    automations that run them.

    A failure here is reported, not fatal: the reminders matter more than their watcher.
    """
    try:
        ops_alert = next(d for d in deployments if d.name == OPS_ALERT)
        for compile_ in (d for d in deployments if d.name == COMPILE):
            compile_.apply()  # the compile automation needs it (ensure_automations finds it)
        watch(ops_alert.apply())
    except Exception as error:  # any Prefect or API error: report it and serve on
        print(f"tidtam: could not create the Prefect automations that watch the flows: {error!r}",
              file=sys.stderr)
    else:
        print("tidtam: Prefect automations watching escalation-sweep and coordinator-digest, "
              "and compiling a directive's report once every district's is accepted, are set")


def watch(ops_alert_deployment_id: UUID) -> list[UUID]:
    """Create or update the automations that run `ops-alert`, each silence watcher carrying its
    flow's schedules from prefect.yaml."""
    return ensure_automations(ops_alert_deployment_id,
                              {flow: schedules_of(flow) for flow in WATCHED_FLOWS})


def wait_for_prefect(timeout: float = 300.0) -> None:
    """`tidtam serve` starts the Prefect server and this process together: wait for the server."""
    import os

    from tidtam.ops.prefect_server import wait_healthy

    api_url = os.environ.get("PREFECT_API_URL")
    if api_url and not wait_healthy(api_url, timeout=timeout):
        raise SystemExit(f"tidtam: the Prefect server at {api_url} did not answer in {timeout:.0f} s; "
                         "scheduled flows are not served (เซิร์ฟเวอร์ Prefect ไม่ตอบสนอง)")


def main() -> None:
    deployments = deployments_from_yaml()
    wait_for_prefect()
    watch_the_flows(deployments)
    serve(*deployments, print_starting_message=True)


if __name__ == "__main__":
    main()
