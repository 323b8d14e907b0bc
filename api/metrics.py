"""Prometheus metrics: transitions by trigger, request latencies, sweep durations, the outbox's health."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import sqlalchemy as sa
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from workflow.models import OutboxStatus
from workflow.tables import OUTBOX, SWEEP_RUNS

TRANSITIONS = Counter("dabiao_transitions_total", "Transitions fired through the API", ["trigger"])
REQUESTS = Histogram(
    "dabiao_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# A request's method becomes a label only when it is one HTTP defines; anything else is "other", so a client
# inventing methods cannot grow the metrics without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


SWEEP_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 1800)


class OutboxCollector(Collector):
    """Reads, at scrape time, the outbox's pending and failed counts and how long the latest deadline
    sweeps took (sweeps run in the scheduler's process, so the database is where their timings live)."""

    def __init__(self) -> None:
        self.engine_of: Callable[[], sa.Engine | None] = lambda: None

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        engine = self.engine_of()
        if engine is None:
            return
        family = GaugeMetricFamily("dabiao_outbox_messages", "Outbox messages by status", labels=["status"])
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(OUTBOX.c.status, sa.func.count())
                    .where(OUTBOX.c.status.in_((OutboxStatus.pending, OutboxStatus.failed, OutboxStatus.no_recipient)))
                    .group_by(OUTBOX.c.status)
                ).all()
        except sa.exc.SQLAlchemyError:
            return
        counts = {"pending": 0, "failed": 0, "no_recipient": 0} | {r[0]: int(r[1]) for r in rows}
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        yield family
        try:
            sweeps = self._sweeps(engine)
        except sa.exc.SQLAlchemyError:
            return
        yield sweeps

    @staticmethod
    def _sweeps(engine: sa.Engine) -> HistogramMetricFamily:
        with engine.connect() as conn:
            runs = conn.execute(
                sa.select(SWEEP_RUNS.c.started_at, SWEEP_RUNS.c.finished_at)
                .where(SWEEP_RUNS.c.finished_at.is_not(None))
                .order_by(SWEEP_RUNS.c.id.desc())
                .limit(100)
            ).all()
        seconds = [max((r.finished_at - r.started_at).total_seconds(), 0.0) for r in runs]
        buckets = [(str(b), sum(1 for s in seconds if s <= b)) for b in SWEEP_BUCKETS] + [("+Inf", len(seconds))]
        family = HistogramMetricFamily("dabiao_sweep_seconds", "Duration of the latest (up to 100) deadline sweeps")
        family.add_metric([], buckets, sum_value=sum(seconds))
        return family


OUTBOX_COLLECTOR = OutboxCollector()
REGISTRY.register(OUTBOX_COLLECTOR)
