"""deploy/README.md has a runbook section for every alert, where its runbook_url points."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

#: The alerts of issue 14 (the names the rules file and the runbooks share).
ALERTS = [
    "ForumcastDown", "ForumcastInputDown", "ForumcastSlateDuringSession", "ForumcastProgramFailover",
    "ForumcastViewersDropped", "ForumcastRelayDrops", "ForumcastHlsUnavailable",
    "ForumcastRedisUnreachable", "ForumcastLeaderChurn", "ForumcastEventLoopLag",
    "ForumcastIngestFailures", "ForumcastSchedulerLagging", "ForumcastStoreErrors",
    "ForumcastHttp5xx", "ForumcastStageNotLive", "ForumcastTaskFailing", "ForumcastTaskDown",
]  # fmt: skip


def runbook_sections() -> dict[str, str]:
    """Anchor id → the section's text up to the next anchor."""
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    parts = re.split(r'<a id="(alert-[a-z0-9]+)"></a>\n', text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_alert_has_a_runbook_section_with_means_confirm_do() -> None:
    sections = runbook_sections()
    for name in ALERTS:
        section = sections.get(f"alert-{name.lower()}")
        assert section is not None, name
        assert section.startswith(f"### {name}\n"), name
        for part in ("**Means**", "**Confirm**", "**Do**"):
            assert part in section, (name, part)
    assert set(sections) == {f"alert-{name.lower()}" for name in ALERTS}


def test_every_rule_in_the_alerts_file_points_to_its_runbook() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "forumcast-alerts.yml").read_text(encoding="utf-8"))
    sections = runbook_sections()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            anchor = f"alert-{rule['alert'].lower()}"
            assert anchor in sections, rule["alert"]
            url = rule.get("annotations", {}).get("runbook_url")
            assert url == f"deploy/README.md#{anchor}", (rule["alert"], url)
