"""Window decisions as Slack mrkdwn: the core decides in data, the view escapes and mentions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import parse_config
from bot.core.windows import AdhocFreeze, ClosedAhead, WindowPolicy, adhoc_until
from bot.views.windows import closed_ahead_lines, closed_reason, day_ranges, window_mrkdwn, window_summary

TORONTO = ZoneInfo("America/Toronto")
DEPLOY = {"provider": "command", "run": ["true"]}
HOSTILE = "<!channel> & <https://evil.example|click>"


def policy(freezes: list[dict[str, Any]] | None = None) -> WindowPolicy:
    return WindowPolicy(
        parse_config(
            {
                "timezone": "America/Toronto",
                "business_hours": {"start": "09:00", "end": "16:00"},
                "freezes": freezes or [],
                "services": {"svc": {"channel": "C01TEST", "pipeline": ["staging", "prod"]}},
                "environments": {
                    "staging": {"window": "always", "deploy": DEPLOY},
                    "prod": {"window": "business_hours", "deploy": DEPLOY},
                },
            }
        )
    )


def freeze(reason: str, by: str = "U0FREEZER") -> AdhocFreeze:
    return AdhocFreeze("staging", adhoc_until(date(2026, 5, 3), TORONTO), reason, by, datetime(2026, 5, 1, tzinfo=UTC))


def test_an_adhoc_freeze_names_its_author_with_a_mention_and_escapes_what_they_typed() -> None:
    at = datetime(2026, 5, 2, 14, 0, tzinfo=UTC)
    decision = policy().decide("staging", at, [freeze(HOSTILE)])
    (reason,) = decision.reasons
    assert reason.freeze is not None and reason.freeze.by == "U0FREEZER"
    assert closed_reason(reason) == (
        "ad-hoc freeze by <@U0FREEZER>: &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    )
    assert window_mrkdwn(decision, TORONTO) == (
        "staging is closed: ad-hoc freeze by <@U0FREEZER>: &lt;!channel&gt; &amp; "
        "&lt;https://evil.example|click&gt;. Next window: Mon 4 May 00:00 EDT."
    )
    assert window_summary(decision, TORONTO) == (
        "closed (ad-hoc freeze by <@U0FREEZER>: &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;); "
        "opens Mon 4 May 00:00 EDT"
    )
    # An author that is not a Slack user ID is shown as text, escaped, never as a mention.
    (odd,) = policy().decide("staging", at, [freeze("x", by="<!here>")]).reasons
    assert closed_reason(odd) == "ad-hoc freeze by &lt;!here&gt;: x"


def test_a_configured_freeze_reason_is_escaped() -> None:
    frozen = policy([{"start": "2026-05-04", "end": "2026-05-05", "reason": "<!channel> release & party"}])
    decision = frozen.decide("prod", datetime(2026, 5, 4, 14, 0, tzinfo=UTC))
    assert [closed_reason(r) for r in decision.reasons] == ["&lt;!channel&gt; release &amp; party (until Tue 5 May)"]
    assert window_summary(decision, TORONTO) == (
        "closed (&lt;!channel&gt; release &amp; party (until Tue 5 May)); opens Wed 6 May 09:00 EDT"
    )


def test_open_windows_say_until_when() -> None:
    open_prod = policy().decide("prod", datetime(2026, 5, 4, 14, 0, tzinfo=UTC))
    assert window_summary(open_prod, TORONTO) == "open until Mon 4 May 16:00 EDT"
    assert window_summary(policy().decide("staging", datetime(2026, 5, 4, tzinfo=UTC)), TORONTO) == "open"


def test_days_closed_ahead_as_lines() -> None:
    assert day_ranges([date(2026, 12, 24), date(2026, 12, 22), date(2026, 12, 23), date(2026, 12, 28)]) == (
        "Tue 22 Dec – Thu 24 Dec, Mon 28 Dec"
    )
    closures = [
        ClosedAhead("prod", (date(2026, 12, 25),), "Christmas Day"),
        ClosedAhead("prod", (date(2026, 11, 25), date(2026, 11, 26)), HOSTILE, service="notify", by="U01RELEASE"),
    ]
    assert closed_ahead_lines(closures) == [
        "Fri 25 Dec: Christmas Day (prod)",
        "Wed 25 Nov – Thu 26 Nov: notify prod frozen by <@U01RELEASE>: "
        "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;",
    ]
