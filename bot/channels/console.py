"""A terminal conversation with the bot through the same dispatcher (errbot's text backend).

For trying commands, training HR, and end-to-end handler tests. Notices it creates wait in the
outbox of the shared database until the running service delivers them.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from typing import TextIO

from bot.chat.messages import ChatType, IncomingMessage
from bot.dispatcher import Dispatcher

PROMPT = "你> "


async def run_console(
    dispatcher: Dispatcher,
    *,
    platform: str,
    user_id: str,
    chat_type: ChatType = "direct",
    chat_id: str | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> int:
    stdout.write(f"面试退出助手 · 控制台({platform}:{user_id},{'群聊' if chat_type == 'group' else '单聊'})\n")
    stdout.write("输入「帮助」查看命令,Ctrl-D 退出。\n")
    # Message ids are never reused across sessions: a 确认 that met an earlier session's id would
    # be taken as a redelivery of that message (crash replay is keyed on platform:msg_id).
    session = uuid.uuid4().hex
    for n in itertools.count(1):
        stdout.write(PROMPT)
        stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            stdout.write("\n")
            return 0
        msg = IncomingMessage(
            platform=platform,
            sender_id=user_id,
            chat_id=chat_id or user_id,
            chat_type=chat_type,
            text=line.rstrip("\n"),
            msg_id=f"console-{session}-{n}",
        )
        for reply in await dispatcher.handle(msg):
            if reply.title:
                stdout.write(f"【{reply.title}】\n")
            stdout.write(reply.text + "\n")
            if reply.buttons:
                stdout.write("  " + "  ".join(f"[{label}] 输入「{cmd}」" for label, cmd in reply.buttons) + "\n")
        stdout.flush()
    return 0
