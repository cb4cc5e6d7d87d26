"""One run of ``blockproof alerts``: compute, record as pending, deliver, mark.

Theory of operation, in the order a run goes (docs/alerts.md says why it is safe):

1. **Compute** (``changes.compute``): the store's current events against what the
   ledger says was announced give the new alerts, with stable ids.
2. **Record** (one durable transaction, ``Ledger.record``): the new alerts, the new
   announced records, and one *pending* delivery per (subscription, destination) each
   alert matches. From here on nothing can be lost: a run that dies finds them pending.
3. **Deliver**, oldest alert first, and **mark** each delivery durably right after:
   - Atom destinations first: the feed is rewritten (atomically, and only when its bytes
     change) from every alert of the ledger that matches the subscription, and its
     pending deliveries are marked together. Rewriting is idempotent, so a crash there
     repeats nothing.
   - then webhooks and e-mails, one delivery at a time (``webhook.deliver``,
     ``mail.send``: retries with backoff inside). A delivery still failing after its
     retries stays pending, and the later deliveries to the same destination wait for
     the next run (so that a receiver gets an event's alerts in order). A permanent
     failure is marked ``failed`` and reported.

Pending deliveries of earlier runs are delivered first, in their order; those whose
destination is no longer configured are counted and left. ``dry_run`` computes and
reports what would be delivered and writes nothing. Progress goes to the ``on_outcome``
callback, one call per delivery marked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from blockproof.alerts.atom import feed_xml, write_feed
from blockproof.alerts.changes import Alert, Context, compute
from blockproof.alerts.ledger import Ledger
from blockproof.alerts.mail import MAIL_POLICY
from blockproof.alerts.subscriptions import Destination, SmtpSettings, Subscription
from blockproof.alerts.webhook import Result, RetryPolicy
from blockproof.errors import InputError
from blockproof.pipeline.events import StoredEvent, read_events
from blockproof.pipeline.store import Store, StoreError
from blockproof.platforms import profiles

__all__ = ["Outcome", "RunReport", "Settings", "load_current_events", "now_iso", "run_alerts"]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Settings:
    explorer_url: str
    store_label: str
    smtp: SmtpSettings | None = None
    webhook_policy: RetryPolicy = field(default_factory=RetryPolicy)
    mail_policy: RetryPolicy = MAIL_POLICY
    dry_run: bool = False
    retry_failed: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """One delivery done, tried or (dry run) to do."""

    subscription: str
    destination: Destination
    alert: Alert
    status: str  # delivered | pending | failed | would-deliver
    attempts: int = 0
    error: str | None = None


@dataclass(slots=True)
class RunReport:
    new_alerts: list[Alert] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    unconfigured: int = 0  # pending deliveries whose destination is no longer configured
    requeued: int = 0  # failed deliveries put back to pending (retry_failed)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing is left pending."""
        return not any(o.status in ("failed", "pending") for o in self.outcomes)


def load_current_events(store: Store) -> list[StoredEvent]:
    try:
        return read_events(store)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    except StoreError as exc:
        raise InputError(str(exc)) from None


def _context(settings: Settings) -> Context:
    names = {pid: p.name for pid, p in profiles().items()}
    return Context(settings.explorer_url, settings.store_label, names)


def _targets(
    alerts: Sequence[Alert], subscriptions: Sequence[Subscription]
) -> list[tuple[Subscription, Destination, Alert]]:
    return [
        (sub, dest, alert)
        for alert in alerts
        for sub in subscriptions
        if sub.filters.matches(alert)
        for dest in sub.destinations()
    ]


class _Run:
    def __init__(
        self,
        ledger: Ledger,
        subscriptions: Sequence[Subscription],
        settings: Settings,
        report: RunReport,
        on_outcome: Callable[[Outcome], None],
        sleep: Callable[[float], None],
    ) -> None:
        self.ledger = ledger
        self.subscriptions = subscriptions
        self.settings = settings
        self.report = report
        self.on_outcome = on_outcome
        self.sleep = sleep
        self.configured = {
            (sub.name, dest.key): (sub, dest)
            for sub in subscriptions
            for dest in sub.destinations()
        }

    def done(self, outcome: Outcome) -> None:
        self.report.outcomes.append(outcome)
        self.on_outcome(outcome)

    def mark(self, sub: Subscription, dest: Destination, alerts: Sequence[Alert],
             result: Result) -> None:  # fmt: skip
        status = result.status
        self.ledger.mark(
            [(sub.name, dest.key, a.id) for a in alerts],
            status,
            result.attempts,
            result.error,
            now_iso(),
        )
        for alert in alerts:
            self.done(Outcome(sub.name, dest, alert, status, result.attempts, result.error))

    def atom(self, pending: dict[tuple[str, str], list[Alert]], fallback: str) -> None:
        everything: list[Alert] | None = None
        for (name, key), (sub, dest) in self.configured.items():
            if dest.atom is None:
                continue
            if everything is None:
                everything = self.ledger.alerts()
            mine = [a for a in everything if sub.filters.matches(a)]
            data = feed_xml(
                mine,
                name=f"subscription:{sub.name}",
                title=f"blockproof alerts: {sub.name}",
                fallback_updated=fallback,
                home_url=self.settings.explorer_url + "/",
            )
            waiting = pending.get((name, key), [])
            try:
                write_feed(dest.atom, data)
            except OSError as exc:
                result = Result("pending", 1, f"cannot write {dest.atom}: {exc.strerror or exc}")
            else:
                result = Result("delivered", 1)
            if waiting:
                self.mark(sub, dest, waiting, result)

    def push(self, sub: Subscription, dest: Destination, alert: Alert, client: object) -> Result:
        if dest.webhook is not None:
            import httpx

            from blockproof.alerts.webhook import deliver

            assert isinstance(client, httpx.Client)
            return deliver(client, dest.webhook, alert, self.settings.webhook_policy, self.sleep)
        from blockproof.alerts.mail import send

        if self.settings.smtp is None:
            return Result("pending", 0, "no SMTP server configured (--smtp or [smtp])")
        return send(self.settings.smtp, alert, dest.mail_to, self.settings.mail_policy,
                    self.sleep)  # fmt: skip

    def deliver_all(self) -> None:
        pending: dict[tuple[str, str], list[Alert]] = {}
        ordered: list[tuple[Subscription, Destination, Alert]] = []
        for d in self.ledger.deliveries("pending"):
            found = self.configured.get((d.subscription, d.destination))
            if found is None:
                self.report.unconfigured += 1
                continue
            sub, dest = found
            if dest.atom is not None:
                pending.setdefault((sub.name, dest.key), []).append(d.alert)
            else:
                ordered.append((sub, dest, d.alert))
        self.atom(pending, self.ledger.created() or now_iso())
        if not ordered:
            return
        import httpx

        stalled: set[tuple[str, str]] = set()
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for sub, dest, alert in ordered:
                if (sub.name, dest.key) in stalled:
                    self.done(
                        Outcome(sub.name, dest, alert, "pending", 0,
                                "waits for an earlier alert to this destination")
                    )  # fmt: skip
                    continue
                result = self.push(sub, dest, alert, client)
                self.mark(sub, dest, [alert], result)
                if result.status == "pending":
                    stalled.add((sub.name, dest.key))


def run_alerts(
    store: Store,
    subscriptions: Sequence[Subscription],
    settings: Settings,
    *,
    now: str | None = None,
    on_outcome: Callable[[Outcome], None] = lambda _o: None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """One run over ``store`` (see the module's docstring)."""
    now = now or now_iso()
    events = load_current_events(store)
    context = _context(settings)
    report = RunReport()
    if settings.dry_run:
        peek = Ledger.peek(store)
        try:
            announced = peek.announced() if peek else {}
            alerts, _ = compute(events, announced, context, now)
            report.new_alerts = alerts
            for sub, dest, alert in _targets(alerts, subscriptions):
                report.outcomes.append(Outcome(sub.name, dest, alert, "would-deliver"))
                on_outcome(report.outcomes[-1])
            configured = {(s.name, d.key): (s, d) for s in subscriptions for d in s.destinations()}
            for d in peek.deliveries("pending") if peek else []:
                found = configured.get((d.subscription, d.destination))
                if found is None:
                    report.unconfigured += 1
                    continue
                outcome = Outcome(found[0].name, found[1], d.alert, "would-deliver",
                                  d.attempts, d.last_error)  # fmt: skip
                report.outcomes.append(outcome)
                on_outcome(outcome)
        finally:
            if peek is not None:
                peek.close()
        return report

    with Ledger.open(store, now) as ledger:
        run = _Run(ledger, subscriptions, settings, report, on_outcome, sleep)
        if settings.retry_failed:
            report.requeued = ledger.retry_failed(run.configured, now)
        announced = ledger.announced()
        alerts, after = compute(events, announced, context, now)
        changed = {k: v for k, v in after.items() if announced.get(k) != v}
        targets = [(s.name, d.key, a.id) for s, d, a in _targets(alerts, subscriptions)]
        ledger.record(alerts, changed, targets, now)
        report.new_alerts = alerts
        run.deliver_all()
    return report
