"""The Slack Web API methods the fake answers from its workspace state (chat, conversations, users, views…).

Each handler takes the decoded arguments and returns the body of an ``ok: true`` answer, or raises
``SlackError``; a post to a response_url is applied here too. Methods that hand out URLs of the running
server (file upload, Socket Mode) are added by ``FakeSlackWebAPI`` in slack_api.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.fakes.slack_state import MESSAGE_BLOCK_LIMIT, Args, Ephemeral, Message, SlackError, SlackState

Handler = Callable[[Args], Awaitable[Args]]
# Arguments without which Slack answers invalid_arguments before the method runs.
REQUIRED_ARGS: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("channel",),
    "chat.update": ("channel", "ts"),
    "chat.delete": ("channel", "ts"),
    "chat.postEphemeral": ("channel", "user"),
    "chat.getPermalink": ("channel", "message_ts"),
    "conversations.info": ("channel",),
    "conversations.history": ("channel",),
    "conversations.replies": ("channel", "ts"),
    "users.info": ("user",),
    "usergroups.users.list": ("usergroup",),
    "views.open": ("trigger_id", "view"),
    "views.update": ("view",),
    "views.publish": ("user_id", "view"),
    "files.getUploadURLExternal": ("filename", "length"),
    "files.completeUploadExternal": ("files",),
}


@dataclass
class ResponseUrl:
    """Where a response_url the fake handed out acts, and how often it was used."""

    channel: str | None
    message_ts: str | None
    user_id: str | None
    uses: int = 0


class SlackMethods(SlackState):
    """Web API method handlers over ``SlackState``."""

    def _apply_response_url(self, target: ResponseUrl, args: Args) -> None:
        """Apply a response_url post the way Slack shows it: delete/replace the original, or post anew."""
        blocks = self._check_blocks(args.get("blocks"), MESSAGE_BLOCK_LIMIT, "invalid_blocks")
        if target.channel is None:
            return
        original = self._messages.get((target.channel, target.message_ts or ""))
        if args.get("delete_original") in (True, "true") and original is not None:
            del self._messages[(original.channel, original.ts)]
        elif args.get("replace_original") in (True, "true") and original is not None:
            self._edit(original, {"text": args.get("text", ""), "blocks": blocks})
        elif args.get("response_type") == "in_channel":
            self._post(target.channel, args)
        else:
            self.ephemerals.append(
                Ephemeral(
                    target.channel,
                    target.user_id or "",
                    args.get("text", ""),
                    blocks,
                    args.get("thread_ts"),
                    self._next_ts(),
                )
            )

    # ----------------------------------------------------------------- Web API methods

    def _handlers(self) -> dict[str, Handler]:
        """The methods answered from the workspace state, by Web API method name."""
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    async def _auth_test(self, a: Args) -> Args:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain.title(),
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _chat_post_message(self, a: Args) -> Args:
        msg = self._post(str(a["channel"]), a)
        return {"channel": msg.channel, "ts": msg.ts, "message": msg.as_slack(self.bot_id, self.app_id)}

    async def _chat_update(self, a: Args) -> Args:
        msg = self._find(a)
        self._edit(msg, a)
        return {
            "channel": msg.channel,
            "ts": msg.ts,
            "text": msg.text,
            "message": msg.as_slack(self.bot_id, self.app_id),
        }

    async def _chat_delete(self, a: Args) -> Args:
        msg = self._find(a)
        del self._messages[(msg.channel, msg.ts)]
        return {"channel": msg.channel, "ts": msg.ts}

    async def _chat_post_ephemeral(self, a: Args) -> Args:
        ch = self._channel(str(a["channel"]))
        self._user(str(a["user"]))
        blocks = self._check_blocks(a.get("blocks"), MESSAGE_BLOCK_LIMIT, "invalid_blocks")
        if not (a.get("text") or blocks or a.get("attachments")):
            raise SlackError("no_text")
        eph = Ephemeral(ch["id"], str(a["user"]), a.get("text") or "", blocks, a.get("thread_ts"), self._next_ts())
        self.ephemerals.append(eph)
        return {"message_ts": eph.message_ts}

    async def _chat_get_permalink(self, a: Args) -> Args:
        msg = self._find(a, "message_ts")
        link = f"https://{self.team_domain}.slack.com/archives/{msg.channel}/p{msg.ts.replace('.', '')}"
        if msg.thread_ts and msg.thread_ts != msg.ts:
            link += f"?thread_ts={msg.thread_ts}&cid={msg.channel}"
        return {"channel": msg.channel, "permalink": link}

    async def _conversations_info(self, a: Args) -> Args:
        return {"channel": self._channel(str(a["channel"]))}

    async def _conversations_history(self, a: Args) -> Args:
        """Top-level messages, newest first (replies live in their thread, as in Slack)."""
        ch = self._channel(str(a["channel"]))
        if not ch["is_member"]:
            raise SlackError("not_in_channel")
        top = [m for m in self.messages(ch["id"]) if m.thread_ts in (None, m.ts)]
        return self._page(list(reversed(top)), a, default_limit=100)

    async def _conversations_replies(self, a: Args) -> Args:
        """The thread of ``ts``: its parent first, then the replies, oldest first."""
        msg = self._messages.get((self._dm_id(str(a["channel"])), str(a["ts"])))
        if msg is None:
            raise SlackError("thread_not_found")
        return self._page(self.thread(msg.channel, msg.thread_ts or msg.ts), a, default_limit=1000)

    def _page(self, messages: list[Message], a: Args, *, default_limit: int) -> Args:
        """Slack's oldest/latest/inclusive/limit/cursor paging; metadata only with include_all_metadata."""
        inclusive = str(a.get("inclusive", "")).lower() in ("1", "true")
        oldest, latest = float(a.get("oldest") or 0), float(a.get("latest") or "inf")

        selected = [
            m for m in messages if (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        start = int(a.get("cursor") or 0)
        limit = int(a.get("limit") or default_limit)
        page = selected[start : start + limit]
        with_metadata = str(a.get("include_all_metadata", "")).lower() in ("1", "true")
        out = []
        for m in page:
            shown = m.as_slack(self.bot_id, self.app_id)
            if not with_metadata:
                shown.pop("metadata", None)
            out.append(shown)
        more = start + limit < len(selected)
        return {
            "messages": out,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    async def _conversations_open(self, a: Args) -> Args:
        users = str(a.get("users", "")).split(",")
        if len(users) != 1 or not users[0]:
            raise SlackError("invalid_arguments")
        self._user(users[0])
        return {"channel": self._channel(users[0])}

    async def _users_info(self, a: Args) -> Args:
        return {"user": self._user(str(a["user"]))}

    async def _usergroups_list(self, a: Args) -> Args:
        include_users = str(a.get("include_users", "")).lower() in ("1", "true")
        groups = [
            g if include_users else {k: v for k, v in g.items() if k != "users"} for g in self.usergroups.values()
        ]
        return {"usergroups": groups}

    async def _usergroups_users_list(self, a: Args) -> Args:
        group = self.usergroups.get(str(a["usergroup"]))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    async def _views_open(self, a: Args) -> Args:
        view = self._view(a["view"])
        self.views[view["id"]] = view
        return {"view": view}

    async def _views_update(self, a: Args) -> Args:
        current = self.views.get(str(a.get("view_id", "")))
        if current is None and a.get("external_id"):
            current = next((v for v in self.views.values() if v["external_id"] == a["external_id"]), None)
        if current is None:
            raise SlackError("not_found")
        if a.get("hash") and a["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._view(a["view"], current["id"], current["external_id"])
        self.views[view["id"]] = view
        return {"view": view}

    async def _views_publish(self, a: Args) -> Args:
        user_id = str(a["user_id"])
        self._user(user_id)
        old = self.home_views.get(user_id)
        view = self._view(a["view"], old["id"] if old else None)
        self.home_views[user_id] = view
        return {"view": view}

    async def _files_complete_upload(self, a: Args) -> Args:
        entries = a["files"] if isinstance(a["files"], list) else []
        files = [self.uploads.get(str(e.get("id"))) for e in entries]
        if not entries or any(f is None or f.data is None for f in files):
            raise SlackError("file_not_found")
        channels = [c for c in [a.get("channel_id"), *str(a.get("channels") or "").split(",")] if c]
        out = []
        for entry, f in zip(entries, files, strict=True):
            assert f is not None
            f.title, f.completed = entry.get("title") or f.filename, True
            f.shared_to = [self._channel(str(c))["id"] for c in channels]
            out.append(
                {
                    "id": f.id,
                    "name": f.filename,
                    "title": f.title,
                    "size": len(f.data or b""),
                    "user": self.bot_user_id,
                    "created": self._ts_base,
                    "channels": f.shared_to,
                    "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{f.id}",
                    "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{f.id}/{f.filename}",
                }
            )
        # Sharing shows up in the channel/thread as a bot message carrying the files.
        for ch in channels:
            self._post(
                str(ch),
                {"text": a.get("initial_comment") or "", "thread_ts": a.get("thread_ts"), "files": out},
            )
        return {"files": out}
