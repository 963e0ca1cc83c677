"""Serve the deployments declared in prefect.yaml from this process (one-machine mode).

`tidtam serve` starts this as a child; for many machines use `prefect deploy --all` + workers.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect import serve
from prefect.schedules import Cron

ROOT = Path(__file__).resolve().parent.parent


def load_flow(entrypoint: str):
    """Import `flows/file.py:flow_name` as the module `flows.file` (flows/ is a package)."""
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def deployments_from_yaml(path: Path = ROOT / "prefect.yaml") -> list:
    """Each deployment of prefect.yaml, with its cron schedules, ready for `serve`."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = []
    for entry in config["deployments"]:
        schedules = [Cron(s["cron"], timezone=s.get("timezone", "Asia/Bangkok"))
                     for s in entry.get("schedules") or []]
        flow = load_flow(entry["entrypoint"])
        result.append(flow.to_deployment(name=entry["name"], schedules=schedules,
                                         tags=entry.get("tags"),
                                         description=entry.get("description")))
    return result


def main() -> None:
    serve(*deployments_from_yaml(), print_starting_message=True)


if __name__ == "__main__":
    main()
