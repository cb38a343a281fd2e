"""Building the alert evaluator from the project's settings, for `agenthq serve` and
`agenthq alerts check` alike."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agenthq.agents.registry import Registry, agents_from_table
from agenthq.events.alerts import AlertEvaluator, alert_settings
from agenthq.events.notify import Channel, Notifier, channels_from
from agenthq.executors.masking import environment_masker
from agenthq.store.api import AlertRecord, Batch, NewEvent, Store


def build_evaluator(
    store: Store, tables: Mapping[str, Any], config_file: Path | str, environ: Mapping[str, str]
) -> tuple[AlertEvaluator, Notifier]:
    where = str(config_file)
    settings = alert_settings(tables.get("alerts", {}), where)
    channels = channels_from(settings.channels, environ, where)
    registry = Registry.build(agents_from_table(tables.get("agents", {}), where))
    limits = {name: a.spec.max_concurrency for name, a in registry.agents.items()}

    def failed(channel: Channel, alert: AlertRecord, why: str) -> None:
        details = {"alert": alert.id, "channel": channel.name, "why": why}
        store.apply(
            Batch(at=time.time(), events=[NewEvent("alert.delivery_failed", details=details)])
        )

    notifier = Notifier(channels, mask=environment_masker(environ), on_failure=failed)
    return AlertEvaluator(store, settings, max_concurrency=limits, notify=notifier), notifier
