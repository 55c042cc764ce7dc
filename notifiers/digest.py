"""A storm digest: when a channel gets alerts faster than Slack lets us post, one message lists them."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from notifiers.text import LINE, truncate

SECTION_CHARS = 2900  # under Slack's 3,000 per section
MAX_SECTIONS = 45  # under Slack's 50 blocks per message
DIGEST_SECONDS = 60.0
# The characters (with newlines) of lines one digest holds: every section can lose at most one line's
# length to chunking, so this always fits in MAX_SECTIONS sections.
DIGEST_CAPACITY = MAX_SECTIONS * (SECTION_CHARS - LINE - 1)


def render_digest(lines: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """'14 alerts in the last minute' with every line, oldest first, in as many sections as it takes.

    Each line is a notifier's `summary` (mrkdwn, its outside parts already escaped), cut to `LINE`."""
    lines = [truncate(line, LINE) for line in lines]
    count = len(lines)
    title = f"⚡ {count} alert{'s' if count != 1 else ''} arrived faster than Slack allows one post each"
    blocks: list[dict[str, Any]] = [
        SectionBlock(
            block_id="digest-title", text=MarkdownTextObject(text=f"*{title}* — listed here, newest last:")
        ).to_dict()
    ]
    chunk: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > SECTION_CHARS and chunk:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))).to_dict())
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))).to_dict())
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text="Single alerts resume when the storm passes.")]).to_dict()
    )
    return title, blocks
