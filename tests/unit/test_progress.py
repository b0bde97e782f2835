"""Progress off a terminal: each stage's count, rate and ETA (from the tenant's rate limit before a rate is seen),
and a line when it ends."""

from __future__ import annotations

import io

from auth0_migrate.report import ConsoleReporter, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_count_rate_and_eta_per_stage() -> None:
    out, clock = io.StringIO(), Clock()
    limit: list[float | None] = [None]
    reporter = ConsoleReporter(out, tenant_rate=lambda: limit[0], clock=clock)
    reporter.phase("read direct permissions", total=1000)
    assert reporter.pace() == ""  # no rate known yet: no ETA is better than a made-up one
    limit[0] = 2.0
    assert reporter.pace() == "tenant limit 2 req/s, ETA 8m20s"  # 1000 users, one call each, at 2 req/s
    clock.now += 10
    reporter.advance(40)  # 4/s seen, faster than one call each: the rate seen wins once known
    assert reporter.pace() == "4.0/s, ETA 4m00s"
    clock.now += 25
    reporter.advance(60)
    assert out.getvalue().splitlines()[-1] == "  read direct permissions: 100/1000, 2.9/s, ETA 5m15s"
    clock.now += 5
    reporter.advance(1)  # within EVERY seconds of the last line: no new line
    assert out.getvalue().count("\n") == 2
    reporter.phase("restore roles and permissions", total=None)
    assert out.getvalue().splitlines()[2:] == ["✓ read direct permissions: 101 in 40s (2.5/s)",
                                               "· restore roles and permissions"]
    reporter.finish()
    assert out.getvalue().splitlines()[-1] == "· restore roles and permissions"  # it counted nothing: no line
    assert reporter.current == "restore roles and permissions"


def test_duration() -> None:
    assert [duration(s) for s in (0, 59.4, 61, 3599, 3600, 7380)] == ["0s", "59s", "1m01s", "59m59s", "1h00m",
                                                                      "2h03m"]
