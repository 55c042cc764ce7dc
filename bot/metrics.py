"""Prometheus instruments of one Switchboard process (a registry of its own, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.slack_requests = Counter(
            "switchboard_slack_requests",
            "Requests received on /slack/events, by HTTP status",
            ["status"],
            registry=r,
        )
        self.hook_requests = Counter(
            "switchboard_hook_requests",
            "Telco webhooks received, by route and outcome",
            ["route", "outcome"],
            registry=r,
        )
        self.inbox_events = Counter(
            "switchboard_inbox_events",
            "Webhook events stored in the inbox (duplicates not counted)",
            ["source"],
            registry=r,
        )
        self.inbox_duplicates = Counter(
            "switchboard_inbox_duplicates",
            "Webhook events answered 2xx but already stored",
            ["source"],
            registry=r,
        )
        self.inbox_failed = Counter(
            "switchboard_inbox_failed",
            "Webhook events given up on after every retry (kept in the inbox as failed)",
            ["source"],
            registry=r,
        )
        self.inbox_batch = Histogram(
            "switchboard_inbox_batch_events",
            "Webhook events handled per inbox transaction",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
            registry=r,
        )
        self.outbox_sent = Counter(
            "switchboard_outbox_sent",
            "Slack messages delivered by the outbox, by method",
            ["method"],
            registry=r,
        )
        self.outbox_failed = Counter(
            "switchboard_outbox_failed",
            "Outbox rows given up on (Slack refused them for good)",
            ["error"],
            registry=r,
        )
        self.outbox_retries = Counter(
            "switchboard_outbox_retries",
            "Transient Slack failures that were retried, by reason",
            ["reason"],
            registry=r,
        )
        self.outbox_rate_limited = Counter(
            "switchboard_outbox_rate_limited", "429 answers from Slack honoured with Retry-After", registry=r
        )
        self.outbox_pending = Gauge("switchboard_outbox_pending", "Outbox rows not yet delivered", registry=r)
        self.inbox_unrouted = Gauge(
            "switchboard_inbox_unrouted", "Events kept because no channel could be found for them", registry=r
        )
        self.outbox_delivery_seconds = Histogram(
            "switchboard_outbox_delivery_seconds",
            "Time from enqueue to Slack accepting the message",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )

        self.feed_pulls = Counter(
            "switchboard_feed_pulls",
            "Pulls of AVANSER's data feed, by outcome (ok, unavailable, timeout, malformed, auth, busy, store)",
            ["outcome"],
            registry=r,
        )
        self.feed_records = Counter(
            "switchboard_feed_records",
            "Data feed records, by outcome: recovered (its webhook never came), known, recording, bad (skipped)",
            ["outcome"],
            registry=r,
        )
        self.feed_last_success = Gauge(
            "switchboard_feed_last_success_timestamp_seconds", "When the data feed was last read whole", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
