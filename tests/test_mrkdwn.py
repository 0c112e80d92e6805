"""The one Slack escaper: text is made inert, and only plain http(s) URLs become links."""

from __future__ import annotations

import pytest

from bot.views.mrkdwn import escape, link, linkable


def test_escape_makes_mentions_and_links_inert() -> None:
    assert escape("<!channel> & <@U1> <https://x.example|y>") == (
        "&lt;!channel&gt; &amp; &lt;@U1&gt; &lt;https://x.example|y&gt;"
    )


@pytest.mark.parametrize(
    "url",
    [None, "javascript:alert(1)", "https://x.example/a|<!here>", "https://x.example/a b", "https://x.example/\n"],
)
def test_only_a_plain_http_url_is_linked(url: str | None) -> None:
    assert not linkable(url)
    assert link(url, "<b>") == "&lt;b&gt;"


def test_a_link_escapes_its_label_and_the_ampersands_of_its_url() -> None:
    assert linkable("https://x.example/?a=1&b=2")
    assert link("https://x.example/?a=1&b=2", "a <b>") == "<https://x.example/?a=1&amp;b=2|a &lt;b&gt;>"
