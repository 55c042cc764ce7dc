"""AVANSER request callbacks → the request's own message, updated in place (or a new post)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.phone import national
from notifiers.events import AvanserRequestUpdate
from notifiers.text import CONFIRM_TEXT, CONTEXT, FIELD, SECTION, TEXT, mrkdwn, truncate

APPROVE_ACTION = "numbers_approve"
REJECT_ACTION = "numbers_reject"


def request_key(request_id: str) -> str:
    return f"request:{request_id}"


def render_request_update(event: AvanserRequestUpdate) -> tuple[str, list[dict[str, str]]]:
    """A callback for a request Switchboard didn't make: every field from AVANSER is escaped and cut."""
    number = national(event.service_e164) if event.service_e164 else "the number"
    if event.status == "completed":
        text = f"✅ *{number} is live.* Calls and texts to it will be posted here."
    else:
        reason = mrkdwn((event.message or "AVANSER gave no reason").rstrip("."), 1000)
        text = f"❌ *The request for {number} failed:* {reason}. Nothing was bought."
    request = mrkdwn(event.request_id, 100)
    text += f"\nRequest `{request}`" + (f" · {mrkdwn(event.custom_id, 100)}" if event.custom_id else "")
    text = truncate(text, SECTION)
    return text.split("\n")[0].replace("*", ""), [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()]


KIND_WORDS = {"create": "a new tracking number", "update": "a change to", "delete": "the release of"}


def render_request(
    kind: str,
    status: str,
    *,
    name: str,
    number: str | None,
    channel: str,
    requester: str,
    request_id: str | None = None,
    decided_by: str | None = None,
    error: str | None = None,
    approvals: str | None = None,
    live_via: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The one message that follows a request from asking to live (or failed), edited at every step:
    seed 000's flow — requested (number reserved) → configured, propagating → live at AVANSER's test
    call, or after the propagation time with "no test call seen" said plainly.

    `name` (typed by the requester) and `error` (a sentence that may quote AVANSER) are escaped here;
    `requester`, `decided_by`, `channel` and `approvals` are Slack ids and become mentions."""
    shown = national(number) if number else None
    name = mrkdwn(name, FIELD)
    what = {
        "create": f"a tracking number “{name}”" + (f" ({shown})" if shown else ""),
        "update": f"a change to “{name}”" + (f" ({shown})" if shown else ""),
        "delete": f"releasing {shown or name}",
    }.get(kind, name)
    if status == "awaiting_approval":
        where = f" in <#{approvals}>" if approvals else ""
        text = f"⏳ <@{requester}> asked for {what}. Waiting for an admin's approval{where}."
    elif status == "rejected":
        text = f"🚫 <@{requester}>'s request for {what} was rejected by <@{decided_by}>. Nothing was bought."
    elif status == "submitting":
        text = f"⏳ Sending <@{requester}>'s request for {what} to AVANSER…"
    elif status == "unclear":
        text = (
            f"⏳ AVANSER gave no clear answer to the request for {what}. Switchboard looks at AVANSER's request "
            "list again shortly and never sends it twice; this message changes when it knows."
        )
    elif status == "pending":
        if kind == "create":
            text = (
                f"⏳ Requested: AVANSER reserved *{shown}* for “{name}” and is configuring it on the phone "
                "network; this message changes at each step."
            )
        else:
            text = f"⏳ AVANSER is working on {what}; this message changes when it's done."
    elif status == "configured":
        text = (
            f"⚙️ *{shown}* is configured — “{name}”. AVANSER takes about 7 minutes to reach all its servers, "
            "then makes a test call; this message says *live* when it does."
        )
    elif status == "completed":
        seen = {
            "test_call": " AVANSER's test call came through.",
            "timer": " No test call was seen (your account "
            "may not include AVANSER's test calls); it has had the usual 7 minutes to propagate.",
        }
        text = {
            "create": f"✅ *{shown}* is live — “{name}”. Its calls and texts will be posted in <#{channel}>."
            + seen.get(live_via or "", ""),
            "update": f"✅ “{name}” ({shown}) is updated.",
            "delete": f"✅ {shown} is released. Its calls will no longer be posted.",
        }.get(kind, "✅ Done.")
    else:
        reason = mrkdwn((error or "AVANSER gave no reason").rstrip("."), 1000)
        nothing = " Nothing was bought." if kind == "create" else ""
        text = f"❌ The request for {what} failed: {reason}.{nothing}"
    context = [f"requested by <@{requester}>"]
    if decided_by and status != "rejected":
        context.append(f"approved by <@{decided_by}>")
    if request_id:
        context.append(f"AVANSER request `{mrkdwn(request_id, 100)}`")
    text = truncate(text, SECTION)
    blocks = [
        SectionBlock(block_id="progress", text=MarkdownTextObject(text=text)).to_dict(),
        ContextBlock(
            block_id="who", elements=[MarkdownTextObject(text=truncate(" · ".join(context), CONTEXT))]
        ).to_dict(),
    ]
    plain = text.replace("*", "")
    return plain, blocks


def _asks(requester: str, what: str, details: list[str]) -> str:
    return truncate(f"📝 <@{requester}> asks for {what}.\n" + "\n".join(f"• {d}" for d in details), SECTION)


def approval_message(row_id: int, requester: str, what: str, details: list[str], cost: str) -> tuple[str, list[Any]]:
    """The approvers' message. `what` and `details` are mrkdwn with their outside parts escaped
    (`bot.domain.numbers.summary`); `cost` is a sentence that may quote AVANSER, escaped here."""
    text = truncate(f"<@{requester}> asks for {what}.", TEXT)
    cost = mrkdwn(cost, 1000)
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=_asks(requester, what, details))),
        ContextBlock(elements=[MarkdownTextObject(text=f"💲 {cost}")]),
        ActionsBlock(
            block_id=f"approval-{row_id}",
            elements=[
                ButtonElement(
                    text="Approve",
                    action_id=APPROVE_ACTION,
                    value=str(row_id),
                    style="primary",
                    confirm=ConfirmObject(
                        title="Approve this request?",
                        text=truncate(f"{what} — {cost}", CONFIRM_TEXT),
                        confirm="Approve",
                        deny="Not yet",
                    ),
                ),
                ButtonElement(text="Reject", action_id=REJECT_ACTION, value=str(row_id), style="danger"),
            ],
        ),
    ]
    return text.replace("<@", "@").replace(">", ""), [b.to_dict() for b in blocks]


def decided_message(requester: str, what: str, details: list[str], admin: str, approved: bool) -> list[dict[str, Any]]:
    verdict = f"✅ Approved by <@{admin}>" if approved else f"🚫 Rejected by <@{admin}>"
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=_asks(requester, what, details))),
        ContextBlock(elements=[MarkdownTextObject(text=verdict)]),
    ]
    return [b.to_dict() for b in blocks]
