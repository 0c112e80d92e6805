"""The release summary as a Slack message: the Summaries service gathers figures, the view words and escapes.

The end-to-end wording (DORA figures by hand, permalinks, posting once) is in test_scenario_summaries.py;
here a Summary built by hand carries names nobody should trust, and a period busy enough to split sections.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from bot.core import dora
from bot.core.windows import ClosedAhead
from bot.views.render import SECTION_LIMIT
from bot.views.summary import Failure, ReleaseCount, Summary, summary_message
from tests.test_views_windows import HOSTILE, TORONTO

ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
# The week Tue 15 – Mon 21 Dec 2026, local midnights.
START = datetime(2026, 12, 15, tzinfo=TORONTO)
END = datetime(2026, 12, 22, tzinfo=TORONTO)
FINISHED = datetime(2026, 12, 16, 15, 0, tzinfo=UTC)  # Wed 16 Dec 10:00 EST


def report(start: datetime, end: datetime, releases: list[dora.ProdRelease] | None = None) -> dora.DoraReport:
    return dora.compute_dora(releases or [], start=start.astimezone(UTC), end=end.astimezone(UTC))


def rolled_back(release_id: int, service: str) -> dora.ProdRelease:
    return dora.ProdRelease(
        release_id=release_id,
        service=service,
        finished_at=FINISHED,
        outcome="rolled_back",
        verdict="fail",
        committed_at=FINISHED - timedelta(hours=2),
        failure_detected_at=FINISHED + timedelta(minutes=5),
        recovered_at=FINISHED + timedelta(minutes=30),
    )


def week() -> Summary:
    failure = Failure(rolled_back(41, HOSTILE), HOSTILE, "rolled_back", "https://acme.slack.com/archives/C1/p1")
    return Summary(
        period="week",
        start=START,
        end=END,
        counts=(
            ReleaseCount(HOSTILE, "prod", "promote", "succeeded", 3),
            ReleaseCount(HOSTILE, "staging", "deploy", "failed", 1),
            ReleaseCount(HOSTILE, "prod", "rollback", "succeeded", 1),
        ),
        pipelines={HOSTILE: ["staging", "prod"]},
        failures=(failure,),
        failure_count=3,
        report=report(START, END, [rolled_back(41, HOSTILE)]),
        previous=report(START - timedelta(days=7), START),
        closed_ahead=(ClosedAhead("prod", (date(2026, 12, 25),), "Christmas Day"),),
        ahead_days=7,
    )


def test_the_summary_escapes_service_and_version_names_and_links_each_failure_to_its_thread() -> None:
    message = summary_message(week(), TORONTO)
    text = "\n".join(b["text"]["text"] for b in message.blocks if "text" in b)
    assert message.text == "Release summary — the week (Tue 15 Dec – Mon 21 Dec)"
    assert f"• *{ESCAPED}* — staging: 1 failed · prod: 3 succeeded, 1 rollback run" in text
    assert (
        f"• #41 *{ESCAPED}* {ESCAPED} (Wed 16 Dec 10:00 EST): rolled back, checks failed, recovered in 25m"
        " · <https://acme.slack.com/archives/C1/p1|thread>"
    ) in text
    assert "…and 2 more: see `/release <service> history`." in text
    assert "• Fri 25 Dec: Christmas Day (prod)" in text
    assert "<!channel>" not in json.dumps(message.blocks, ensure_ascii=False)
    assert message.blocks[-1]["elements"][0]["text"] == f"Bands per {dora.REPORT}. Times in America/Toronto."


def test_a_quiet_day_says_so_and_leaves_the_failures_out() -> None:
    day = replace(
        week(),
        period="day",
        start=END - timedelta(days=1),
        counts=(),
        failures=(),
        failure_count=0,
        closed_ahead=(),
    )
    text = "\n".join(b["text"]["text"] for b in summary_message(day, TORONTO).blocks if "text" in b)
    assert "Release summary — the day (Mon 21 Dec)" in text
    assert "No releases in this period." in text
    assert "Production failures" not in text
    assert "*Closed windows in the next 7 days*\nnone" in text


def test_many_services_split_over_sections_within_block_kits_limit() -> None:
    counts = tuple(ReleaseCount(f"service-{i:03d}-{'x' * 40}", "prod", "deploy", "succeeded", i) for i in range(200))
    message = summary_message(replace(week(), counts=counts), TORONTO)
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(len(s) <= SECTION_LIMIT for s in sections)
    releases = [s for s in sections if "service-" in s]
    assert len(releases) > 1 and releases[0].startswith("*Releases*\n")
    assert sum(s.count("• *service-") for s in releases) == 200
