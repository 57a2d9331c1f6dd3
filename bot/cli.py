"""Command line: ``python -m bot serve | migrate | people … | reasons … | console-link … | report … | notice …``."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import logging
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from bot import events_client
from bot.api import openapi
from bot.app import create_app, freeze_startup_heap
from bot.bounded import BadInput, check_day, load_json
from bot.channels import registry
from bot.channels.console import run_console
from bot.chat.messages import ChatType
from bot.clock import SystemClock
from bot.delivery import Reach
from bot.dispatcher import Dispatcher
from bot.language import llm
from bot.logs import PathAccessLogger, access_logger, configure_logging
from bot.platform_client import PlatformClient
from bot.services import ats, console_admin, console_auth, demo, notice_check, people_import
from bot.services import events as events_service
from bot.services import people as people_service
from bot.services import reasons as reason_service
from bot.services.claims import tool_instance
from bot.services.context import Core
from bot.services.errors import ServiceError
from bot.services.leases import alive
from bot.services.reports import exit_report
from bot.services.summary import send_daily_summary
from bot.settings import Settings
from bot.templating import Templates
from handlers import CANDIDATE, ROUTERS
from storage import repo
from storage.db import create_engine, migrate, session_maker
from storage.models import AtsAction, NoticeStatus, Role

log = logging.getLogger("bot")

# The actor and source of changes made on the command line (audit).
CLI = "cli"
# What migrating logs at INFO (alembic's steps, "schema is up to date"): quiet for every command
# but serve and migrate, whose output is read for it.
QUIET_MIGRATION_LOGGERS = ("alembic", "storage.db")


def day(value: str) -> date:
    """YYYY-MM-DD within the range reports cover (argparse reports the ValueError)."""
    return check_day(date.fromisoformat(value))


class _HelpFormatter(argparse.HelpFormatter):
    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "用法:" if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """argparse with its own words in Chinese (usage, section titles, -h); every subcommand's parser
    is one too (``add_subparsers`` makes parsers of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        add_help = kwargs.pop("add_help", True)
        kwargs["add_help"] = False  # our own -h below, described in Chinese
        super().__init__(*args, **kwargs)
        self._positionals.title = "参数"
        self._optionals.title = "选项"
        if add_help:
            self.add_argument("-h", "--help", action="help", help="显示本帮助并退出")


def _parser() -> argparse.ArgumentParser:
    platforms = "、".join(registry.names())
    outcomes = "或".join(reason_service.OUTCOMES)
    p = _Parser(
        prog="python -m bot",
        description="面试退出助手的命令行。每个命令都读取同一份设置(环境变量和 .env),连接同一个数据库。",
        epilog="各命令的选项:python -m bot <命令> -h,例如 python -m bot people add -h",
    )
    sub = p.add_subparsers(dest="command", required=True, title="命令", metavar="<命令>")
    sub.add_parser("serve", help="升级数据库结构后运行服务(HTTP 回调、网页后台、定时任务、发件箱)")
    sub.add_parser("migrate", help="只升级数据库结构(serve 启动时也会自动升级)")

    people = sub.add_parser("people", help="人员:添加、查看、导入、修改、移除").add_subparsers(
        dest="people_command", required=True, title="子命令", metavar="<子命令>"
    )
    add = people.add_parser("add", help="添加人员(已存在则更新)")
    add.add_argument("--platform", required=True, choices=registry.names(), help=f"所在平台:{platforms}")
    add.add_argument(
        "--user-id", required=True, help="该平台上的用户 ID(企业微信账号、钉钉 userId、飞书 user_id 或 open_id)"
    )
    add.add_argument("--name", required=True, help="姓名")
    add.add_argument(
        "--role", required=True, choices=[r.value for r in Role], help="角色:hr、manager(经理)或 admin(管理员)"
    )
    add.add_argument("--mobile", help="手机号(可选)")
    add.add_argument("--email", help="邮箱(可选;没有聊天渠道时日报和通知发到这里)")
    people.add_parser("list", help="列出全部人员")
    people_import_cmd = people.add_parser("import", help="从 CSV 文件批量导入人员(先预览,确认后导入)")
    people_import_cmd.add_argument(
        "file", metavar="FILE.csv", help="CSV 文件,列为 platform,user_id,name,role,mobile,email"
    )
    people_import_cmd.add_argument("--yes", action="store_true", help="不询问,预览后直接导入")
    edit_person = people.add_parser("edit", help="修改人员的角色、姓名或联系方式")
    edit_person.add_argument("--platform", required=True, choices=registry.names(), help=f"所在平台:{platforms}")
    edit_person.add_argument("--user-id", required=True, help="该平台上的用户 ID")
    edit_person.add_argument("--name", help="新姓名")
    edit_person.add_argument("--role", choices=[r.value for r in Role], help="新角色:hr、manager 或 admin")
    edit_person.add_argument("--mobile", help='新手机号(传 "" 清空)')
    edit_person.add_argument("--email", help='新邮箱(传 "" 清空)')
    remove_person = people.add_parser("remove", help="移除人员")
    remove_person.add_argument("--platform", required=True, choices=registry.names(), help=f"所在平台:{platforms}")
    remove_person.add_argument("--user-id", required=True, help="该平台上的用户 ID")

    reasons = sub.add_parser("reasons", help="退出原因:查看、添加、修改、停用、删除").add_subparsers(
        dest="reasons_command", required=True, title="子命令", metavar="<子命令>"
    )
    reasons.add_parser("list", help="按顺序列出全部退出原因")
    add_reason = reasons.add_parser("add", help="添加退出原因")
    add_reason.add_argument("--name", required=True, help="名称,例如 候选人迟到")
    add_reason.add_argument(
        "--outcome",
        required=True,
        choices=reason_service.OUTCOMES,
        help=f"结束后的招聘状态:{outcomes}",
    )
    add_reason.add_argument("--synonyms", default="", help="聊天中可说的同义词,用逗号或 、 分隔")
    add_reason.add_argument("--code", help="代码:小写字母、数字、下划线(不填则自动生成)")
    edit_reason = reasons.add_parser("edit", help="改名、改同义词、改招聘状态、调整顺序、重新启用")
    edit_reason.add_argument("code", help="原因代码(reasons list 中括号里的)")
    edit_reason.add_argument("--name", help="新名称")
    edit_reason.add_argument("--synonyms", help='完整的同义词列表,用逗号或 、 分隔(传 "" 表示没有)')
    edit_reason.add_argument("--outcome", choices=reason_service.OUTCOMES, help=f"新的招聘状态:{outcomes}")
    edit_reason.add_argument("--enable", action="store_true", help="重新启用已停用的原因")
    edit_reason.add_argument("--move", type=int, metavar="N", help="移动 N 位(负数为上移)")
    disable_reason = reasons.add_parser("disable", help="停用原因(聊天中不再提供)")
    disable_reason.add_argument("code", help="原因代码")
    delete_reason = reasons.add_parser("delete", help="删除已停用且没有被引用的原因")
    delete_reason.add_argument("code", help="原因代码")

    link = sub.add_parser("console-link", help="打印网页后台的一次性登录链接(10 分钟内有效)")
    link.add_argument("--platform", required=True, choices=registry.names(), help=f"登录人所在平台:{platforms}")
    link.add_argument("--user-id", required=True, help="登录人在该平台上的用户 ID(须已用 people add 添加)")

    chat = sub.add_parser("chat", help="在终端里以某人的身份和机器人对话(试用、排查)")
    chat.add_argument(
        "--as",
        dest="who",
        required=True,
        metavar="PLATFORM:USER_ID",
        help=f"以谁的身份,平台:用户ID,例如 {registry.names()[0]}:hr01",
    )
    chat.add_argument("--group", action="store_true", help="当作群聊(联系方式会打码)")

    report = sub.add_parser("report", help="报表").add_subparsers(
        dest="report_command", required=True, title="子命令", metavar="<子命令>"
    )
    exits = report.add_parser("exits", help="按原因统计提前结束的面试(默认本月)")
    exits.add_argument("--from", dest="start", type=day, help="开始日期 YYYY-MM-DD(默认:结束日期所在月的 1 日)")
    exits.add_argument("--to", dest="end", type=day, help="结束日期 YYYY-MM-DD(默认:今天,按 BOT_TIMEZONE)")
    exits.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="输出格式:table(默认)、csv 或 json"
    )

    summary = sub.add_parser("summary", help="经理的每日退出日报").add_subparsers(
        dest="summary_command", required=True, title="子命令", metavar="<子命令>"
    )
    send = summary.add_parser("send", help="立即发送日报(每人每天只会收到一份)")
    send.add_argument("--date", dest="day", type=day, help="日报日期 YYYY-MM-DD(默认:今天)")

    notice = sub.add_parser("notice", help="通知:测试发送、查看问题、重发").add_subparsers(
        dest="notice_command", required=True, title="子命令", metavar="<子命令>"
    )
    test = notice.add_parser("test", help="发一条测试通知(由运行中的服务经发件箱发出)并显示结果")
    to = test.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-email", metavar="ADDRESS", help="发到这个邮箱(SMTP)")
    to.add_argument("--to-mobile", metavar="NUMBER", help="发到这个手机号(短信)")
    test.add_argument("--wait", type=float, default=60.0, metavar="SECONDS", help="最多等待结果的秒数(默认 60)")
    notice.add_parser("problems", help="列出待发送和发送失败的通知及每次尝试")
    retry = notice.add_parser("retry", help="重发一条发送失败的通知(由运行中的服务发出)")
    retry.add_argument("notice_id", type=int, help="通知编号(notice problems 中的 #编号)")

    sub.add_parser("system", help="系统状态:功能开关、消息和发件箱积压、最近错误、版本、数据库")
    _add_first_try_commands(sub)
    return p


def _add_first_try_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """``demo`` and ``events send``: a first try, and a vendor's integration test, without a platform."""
    demo_cmd = sub.add_parser("demo", help="创建示例面试(通过运行中服务的签名事件接口);--remove 删除全部示例数据")
    demo_cmd.add_argument("--remove", action="store_true", help="删除示例数据(demo- 开头的面试及其全部记录)")
    demo_cmd.add_argument(
        "--hr",
        metavar="PLATFORM:USER_ID",
        help=f"示例面试的负责 HR(默认 {registry.names()[0]}:hr01)",
    )
    ats_cmd = sub.add_parser("ats", help="招聘系统写回:查看对方的终止原因和退出原因的映射、设置映射").add_subparsers(
        dest="ats_command", required=True
    )
    ats_reasons = ats_cmd.add_parser("reasons", help="列出招聘系统的终止原因,以及每个退出原因现在的映射")
    ats_reasons.add_argument("--system", help="招聘系统(默认:唯一已开启的那个)")
    ats_map = ats_cmd.add_parser("map", help="设置一个退出原因在招聘系统中的处理:只记录面试、转阶段或终止投递")
    ats_map.add_argument("code", help="退出原因代码(见 reasons list)")
    ats_map.add_argument("--system", help="招聘系统(默认:唯一已开启的那个)")
    how = ats_map.add_mutually_exclusive_group(required=True)
    how.add_argument("--record", action="store_true", help="只记录 AI 面试,不改投递")
    how.add_argument("--stage", metavar="STAGE_ID", help="把投递转到这个阶段")
    how.add_argument(
        "--terminate", metavar="TYPE", type=int, help="终止投递:1 我们拒绝了候选人、22 候选人拒绝了我们、27 其他"
    )
    ats_map.add_argument("--reason", action="append", default=[], metavar="REASON_ID", help="终止原因 ID(可多次)")
    events_cmd = sub.add_parser("events", help="平台事件").add_subparsers(dest="events_command", required=True)
    send_cmd = events_cmd.add_parser("send", help="签名并发送一个事件文件到运行中的服务,显示状态和应答")
    send_cmd.add_argument("file", metavar="FILE.json", help="一个平台事件(JSON 对象)")
    check_cmd = events_cmd.add_parser(
        "check", help="离线检查事件文件是否符合对接文档(与服务用同一套校验,不需要运行中的服务),逐处指出错误"
    )
    check_cmd.add_argument("files", nargs="+", metavar="FILE.json", help="一个或多个平台事件文件(各为一个 JSON 对象)")
    openapi_cmd = events_cmd.add_parser(
        "openapi", help="输出对接文档(OpenAPI 3.1,默认设置下的 /api/openapi.json,即 docs/openapi.json)"
    )
    openapi_cmd.add_argument("-o", "--output", metavar="FILE", help="写入文件(默认打印到标准输出)")


def _core(settings: Settings, *, reach: Reach | None = None) -> Core:
    engine = create_engine(settings.database_url)
    return Core.reaching(
        reach or Reach(),
        settings=settings,
        sessions=session_maker(engine),
        clock=SystemClock(),
        templates=Templates(),
        instance=tool_instance(settings.port),
    )


async def _people_add(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    try:
        saved = await people_service.register(
            core,
            platform=args.platform,
            user_id=args.user_id,
            role=args.role,
            name=args.name,
            mobile=args.mobile,
            email=args.email,
            actor=CLI,
            source=CLI,
            platforms=registry.names(),
        )
    except people_service.PeopleError as exc:
        return _fail(exc.message)
    print(f"{'已添加' if saved.created else '已更新'} {args.platform}:{args.user_id} {args.name} ({args.role})")  # noqa: T201
    return 0


async def _people_list(settings: Settings) -> int:
    core = _core(settings)
    async with core.sessions() as session:
        people = await repo.list_people(session)
    for p in people:
        print(f"{p.platform}:{p.user_id}\t{p.name}\t{p.role}\t{p.mobile or ''}\t{p.email or ''}")  # noqa: T201
    if not people:
        print("(还没有人员,请用 people add 添加)")  # noqa: T201
    return 0


def _fail(message: str) -> int:
    print(message, file=sys.stderr)  # noqa: T201
    return 1


def _read_upload(path: str, limit: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit)


async def _people_import(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    try:
        data = _read_upload(args.file, people_import.MAX_BYTES + 1)
    except OSError as exc:
        print(f"无法读取 {args.file}: {exc.strerror}", file=sys.stderr)  # noqa: T201
        return 2
    platforms = registry.names()
    try:
        shown = await people_import.preview(core, data, platforms=platforms, actor=CLI)
    except people_import.ImportRefused as exc:
        return _fail(exc.message)
    print(core.templates.render("admin/import_preview.txt.j2", preview=shown, file=args.file))  # noqa: T201
    if not shown.of(people_import.RowAction.add) and not shown.of(people_import.RowAction.change):
        return 0 if not shown.of(people_import.RowAction.error) else 1
    if not args.yes:
        print("确认导入以上新增和修改?输入 y 确认:", end=" ", flush=True)  # noqa: T201
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes", "是"):
            print("未导入。")  # noqa: T201
            return 1
    try:
        result = await people_import.apply(
            core, data, platforms=platforms, fingerprint=shown.fingerprint, actor=CLI, source=CLI
        )
    except people_import.ImportRefused as exc:
        return _fail(exc.message)
    print(  # noqa: T201
        f"已导入:新增 {result.added} 人,修改 {result.changed} 人,不变 {result.unchanged} 人,跳过 {result.skipped} 行。"
    )
    return 0


async def _people_edit(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    try:
        saved = await people_service.update(
            core,
            platform=args.platform,
            user_id=args.user_id,
            role=args.role,
            name=args.name,
            mobile=args.mobile,
            email=args.email,
            actor=CLI,
            source=CLI,
        )
    except people_service.PeopleError as exc:
        return _fail(exc.message)
    if not saved.changes:
        print(f"{saved.person.key} 没有变化")  # noqa: T201
        return 0
    changed = ",".join(f"{k}: {before or '-'} → {after or '-'}" for k, (before, after) in saved.changes.items())
    print(f"已更新 {saved.person.key} {saved.person.name}:{changed}")  # noqa: T201
    return 0


async def _people_remove(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    gone = await people_service.revoke(core, platform=args.platform, user_id=args.user_id, actor=CLI, source=CLI)
    if gone is None:
        return _fail(f"没有找到人员 {args.platform}:{args.user_id}")
    print(f"已移除 {gone.key} {gone.name}")  # noqa: T201
    return 0


async def _reasons(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    async with core.sessions() as session:
        await repo.ensure_default_reasons(session)
    command = args.reasons_command
    try:
        if command == "add":
            added = await reason_service.add(
                core,
                name=args.name,
                outcome=args.outcome,
                synonyms=reason_service.split_synonyms(args.synonyms),
                code=args.code,
                actor=CLI,
                source=CLI,
            )
            print(f"已添加原因「{added.name}」({added.code})")  # noqa: T201
        elif command == "edit":
            edited = await reason_service.edit(
                core,
                code=args.code,
                name=args.name,
                synonyms=None if args.synonyms is None else reason_service.split_synonyms(args.synonyms),
                outcome=args.outcome,
                active=True if args.enable else None,
                actor=CLI,
                source=CLI,
            )
            if args.move:
                await reason_service.move(core, code=args.code, offset=args.move, actor=CLI, source=CLI)
            print(f"已保存原因「{edited.name}」({edited.code})")  # noqa: T201
        elif command == "disable":
            disabled = await reason_service.edit(core, code=args.code, active=False, actor=CLI, source=CLI)
            print(f"已停用原因「{disabled.name}」({disabled.code})")  # noqa: T201
        elif command == "delete":
            deleted = await reason_service.delete(core, code=args.code, actor=CLI, source=CLI)
            print(f"已删除原因「{deleted.name}」({deleted.code})")  # noqa: T201
    except reason_service.ReasonError as exc:
        return _fail(exc.message)
    if command == "list":
        print(core.templates.render("admin/reasons_list.txt.j2", rows=await reason_service.list_all(core)))  # noqa: T201
    return 0


async def _report_exits(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    async with core.sessions() as session:
        await repo.ensure_default_reasons(session)
    # This month by default: --to today (in BOT_TIMEZONE), --from the 1st of --to's month.
    end = args.end or core.clock.now().astimezone(settings.tz).date()
    start = args.start or end.replace(day=1)
    try:
        report = await exit_report(core, start=start, end=end)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201
        return 2
    if args.format == "json":
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))  # noqa: T201
    elif args.format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["reason", "count"])
        for name, count in report.by_reason.items():  # no total row: it would double a spreadsheet's SUM
            writer.writerow([name, count])
        print(buf.getvalue(), end="")  # noqa: T201
    else:
        width = max([len(n) for n in report.by_reason] + [2]) * 2
        print(f"退出统计 {report.start} ~ {report.end}")  # noqa: T201
        for name, count in report.by_reason.items():
            pad = " " * max(1, width - len(name) * 2)
            print(f"  {name}{pad}{count:>5}")  # noqa: T201
        print(f"  合计{' ' * max(1, width - 4)}{report.total:>5}")  # noqa: T201
    return 0


async def _console_link(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    try:
        token = await console_auth.issue_link(core, platform=args.platform, user_id=args.user_id)
    except ServiceError as exc:
        print(exc.message, file=sys.stderr)  # noqa: T201
        return 1
    print(f"{args.platform}:{args.user_id} 的网页后台登录链接(10 分钟内有效,只能使用一次):")  # noqa: T201
    if console_auth.local_only(settings):
        print("(未设置 BOT_PUBLIC_BASE_URL:这个链接只能在运行服务的这台电脑上打开)")  # noqa: T201
    print(console_auth.link_url(core, token))  # noqa: T201
    return 0


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    platform, sep, user_id = args.who.partition(":")
    if not sep or not user_id:
        print(f"--as 需要 平台:用户ID,例如 {registry.names()[0]}:hr01", file=sys.stderr)  # noqa: T201
        return 2
    core = _core(settings)
    async with core.sessions() as session:
        await repo.ensure_default_reasons(session)
    dispatcher = Dispatcher(core, ROUTERS, proposer=llm.proposer(settings, None), candidate=CANDIDATE)
    chat_type: ChatType = "group" if args.group else "direct"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        core.platform = PlatformClient.configured(settings, http, core.clock)  # it terminates there, as served
        async with alive(core):  # its termination jobs are claimed by this process: not a dead one's to resume
            return await run_console(dispatcher, platform=platform, user_id=user_id, chat_type=chat_type)


async def _summary_send(settings: Settings, args: argparse.Namespace) -> int:
    # The running service's outbox delivers the rows; chat notices need that platform's channel configured.
    core = _core(settings, reach=registry.reach(settings))
    day = args.day or core.clock.now().astimezone(settings.tz).date()
    outcome = await send_daily_summary(core, day=day)
    print(f"{day} 日报:已加入发件箱 {len(outcome.sent)} 份,此前已发送 {len(outcome.already)} 份")  # noqa: T201
    for key in outcome.unreachable:
        print(f"  {key} 没有已连接的聊天渠道,也没有邮箱,未发送")  # noqa: T201
    return 0


async def _notice_test(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    channel, recipient = ("email", args.to_email) if args.to_email else ("sms", args.to_mobile)
    label = notice_check.LABELS[channel]
    try:
        notice = await notice_check.queue(core, channel, recipient)
    except notice_check.NotUsable as exc:
        print(f"没有发送:{exc}", file=sys.stderr)  # noqa: T201
        return 2
    assert notice.id is not None
    print(f"测试通知 #{notice.id} 已加入发件箱({label} → {recipient}),等待服务发送…")  # noqa: T201
    result = await notice_check.wait(core, notice.id, args.wait)
    for attempt in result.attempts:
        print(f"  尝试:{attempt.channel} {attempt.result} {attempt.provider_id or ''} {attempt.error or ''}".rstrip())  # noqa: T201
    if result.notice.status == NoticeStatus.sent:
        print(f"已送达服务商:{label} → {recipient}。请到收件方确认已收到。")  # noqa: T201
        return 0
    if result.notice.status == NoticeStatus.dead:
        print(f"发送失败:{result.notice.last_error}", file=sys.stderr)  # noqa: T201
        return 1
    print(  # noqa: T201
        f"{args.wait:g} 秒内没有发出(状态 {result.notice.status},已尝试 {result.notice.attempts} 次"
        f"{',最近错误:' + result.notice.last_error if result.notice.last_error else ''})。"
        "请确认服务(python -m bot serve)正在运行并使用同一个数据库;结果之后可在 GET /api/notices 查看。",
        file=sys.stderr,
    )
    return 1


async def _notice_retry(settings: Settings, args: argparse.Namespace) -> int:
    core = _core(settings)
    try:
        notice = await console_admin.retry_notice(core, notice_id=args.notice_id, actor=CLI, source=CLI)
    except console_admin.NoticeRetryError as exc:
        return _fail(exc.message)
    print(f"通知 #{notice.id} 已放回发件箱(已尝试 {notice.attempts} 次),运行中的服务会再发一次。")  # noqa: T201
    return 0


async def _notice_problems(settings: Settings) -> int:
    core = _core(settings, reach=registry.reach(settings))  # what can deliver: the configured channels
    groups = await console_admin.problem_notices(core)
    print(core.templates.render("admin/notices.txt.j2", groups=groups, tz=settings.tz))  # noqa: T201
    return 0


async def _system(settings: Settings) -> int:
    core = _core(settings)
    snap = await console_admin.system_snapshot(core, features=registry.feature_status(settings))
    print(core.templates.render("admin/system.txt.j2", snap=snap, tz=settings.tz))  # noqa: T201
    return 0


def _webhook_secret(settings: Settings) -> str | None:
    if settings.platform_webhook_secret is None or not settings.platform_webhook_secret.get_secret_value():
        print(  # noqa: T201
            "没有设置 PLATFORM_WEBHOOK_SECRET:平台事件接口未启用,无法发送签名事件。"
            "请在 .env 中设置它(与服务使用同一个值),重启服务后再试。",
            file=sys.stderr,
        )
        return None
    return settings.platform_webhook_secret.get_secret_value()


def _unreachable(url: str, exc: events_client.Unreachable) -> int:
    print(  # noqa: T201
        f"连不上服务 {url}({exc})。请先在另一个终端运行 python -m bot serve(使用同一个 .env),"
        "或用 BOT_PUBLIC_BASE_URL 指明服务地址。",
        file=sys.stderr,
    )
    return 1


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    if args.remove:
        counts = await demo.remove(_core(settings))
        print(Templates().render("admin/demo_removed.txt.j2", counts=counts))  # noqa: T201
        return 0
    secret = _webhook_secret(settings)
    if secret is None:
        return 2
    hr = args.hr or f"{registry.names()[0]}:hr01"
    platform, sep, user_id = hr.partition(":")
    if not sep or not user_id or platform not in registry.names():
        print(f"--hr 需要 平台:用户ID,平台是 {'、'.join(registry.names())} 之一", file=sys.stderr)  # noqa: T201
        return 2
    core = _core(settings)
    url = console_auth.service_url(settings)
    counted = {"applied": 0, "duplicate": 0}
    async with events_client.Poster(url, secret) as poster:
        for event in demo.events(core.clock.now(), settings.tz, (platform, user_id)):
            try:
                answer = await poster.post(json.dumps(event, ensure_ascii=False).encode())
            except events_client.Unreachable as exc:
                return _unreachable(url, exc)
            if answer.status != 200:
                print(f"服务拒绝了示例事件 {event['event_id']}:HTTP {answer.status} {answer.body}", file=sys.stderr)  # noqa: T201
                _signature_hint(answer.status)
                return 1
            status = json.loads(answer.body).get("status")
            counted["duplicate" if status == "duplicate" else "applied"] += 1
    async with core.sessions() as session:
        known = await repo.get_person(session, platform=platform, user_id=user_id) is not None
    text = core.templates.render(
        "admin/demo.txt.j2",
        url=url,
        samples=demo.SAMPLES,
        applied=counted["applied"],
        duplicate=counted["duplicate"],
        hr=hr,
        hr_known=known,
        idle_minutes=settings.idle_timeout_seconds // 60,
    )
    print(text)  # noqa: T201
    return 0


async def _events_send(settings: Settings, args: argparse.Namespace) -> int:
    try:
        body = _read_upload(args.file, settings.max_body_bytes + 1)
    except OSError as exc:
        print(f"无法读取 {args.file}: {exc.strerror}", file=sys.stderr)  # noqa: T201
        return 2
    if len(body) > settings.max_body_bytes:
        print(f"{args.file} 太大(超过 {settings.max_body_bytes} 字节),服务不会接受", file=sys.stderr)  # noqa: T201
        return 2
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"{args.file} 不是有效的 JSON:{exc}", file=sys.stderr)  # noqa: T201
        return 2
    if not isinstance(parsed, dict):
        print(f"{args.file} 应当是一个 JSON 对象(一个平台事件),而不是 {type(parsed).__name__}", file=sys.stderr)  # noqa: T201
        return 2
    secret = _webhook_secret(settings)
    if secret is None:
        return 2
    url = console_auth.service_url(settings)
    async with events_client.Poster(url, secret) as poster:
        try:
            answer = await poster.post(body)
        except events_client.Unreachable as exc:
            return _unreachable(url, exc)
    print(f"POST {poster.url} → HTTP {answer.status}")  # noqa: T201
    try:
        print(json.dumps(json.loads(answer.body), ensure_ascii=False, indent=2))  # noqa: T201
    except json.JSONDecodeError:
        print(answer.body)  # noqa: T201
    _signature_hint(answer.status)
    return 0 if 200 <= answer.status < 300 else 1


def _events_check(settings: Settings, args: argparse.Namespace) -> int:
    """Each file checked offline by the models the service validates with (``events.event_problems``)."""
    now = SystemClock().now()
    ahead = timedelta(seconds=settings.signature_max_skew_seconds)
    results: list[dict[str, Any]] = []
    for name in args.files:
        result: dict[str, Any] = {
            "name": name,
            "ok": False,
            "error": None,
            "detail": None,
            "problems": [],
            "type": None,
        }
        results.append(result)
        try:
            raw = _read_upload(name, settings.max_body_bytes + 1)
        except OSError as exc:
            result.update(error="unreadable", detail=exc.strerror)
            continue
        if len(raw) > settings.max_body_bytes:
            result.update(error="too_large")
            continue
        try:
            data = load_json(raw)
        except BadInput as exc:
            result.update(error=exc.code, detail=str(exc))
            continue
        problems = events_service.event_problems(data, now=now, max_ahead=ahead)
        result.update(problems=problems, ok=not problems, type=data.get("type") if isinstance(data, dict) else None)
    text = Templates().render("admin/events_check.txt.j2", files=results, limit=settings.max_body_bytes)
    print(text, file=sys.stdout if all(r["ok"] for r in results) else sys.stderr)
    return 0 if all(r["ok"] for r in results) else 1


def _events_openapi(args: argparse.Namespace) -> int:
    text = openapi.render(openapi.build_openapi())  # the defaults: what docs/openapi.json holds
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _signature_hint(status: int) -> None:
    if status == 401:
        print("签名不符:请确认本命令与服务使用同一个 PLATFORM_WEBHOOK_SECRET,且本机时钟准确。", file=sys.stderr)  # noqa: T201


def _log_banner(text: str) -> None:
    for line in text.splitlines():
        if line.strip("= "):
            log.info("%s", line.strip("= "))


def _ats_system(settings: Settings, chosen: str | None) -> str | None:
    systems = sorted(registry.reach(settings).ats_systems)
    if chosen:
        return chosen if chosen in systems else None
    return systems[0] if len(systems) == 1 else None


async def _ats(settings: Settings, args: argparse.Namespace) -> int:
    system = _ats_system(settings, args.system)
    if system is None:
        return _fail("没有已开启的招聘系统写回(或未指定 --system);请先在配置中开启")
    core = _core(settings, reach=registry.reach(settings))
    async with core.sessions() as session:
        await repo.ensure_default_reasons(session)
    try:
        if args.ats_command == "map":
            action = AtsAction.record if args.record else AtsAction.transfer if args.stage else AtsAction.terminate
            await ats.set_mapping(
                core,
                system=system,
                reason_code=args.code,
                action=action,
                operator=CLI,
                stage_id=args.stage,
                termination_type=args.terminate,
                termination_reason_ids=tuple(args.reason),
            )
            print(f"已设置 {args.code} → {action.value}")  # noqa: T201
            return 0
        async with aiohttp.ClientSession() as http:
            theirs = await registry.ats_reasons(settings, core, http, system)
    except ServiceError as exc:
        return _fail(exc.message)
    for r in theirs or []:
        state = "" if r["active"] else "\t(已停用)"
        print(f"{r['id']}\t类型 {r['termination_type']}\t{r['name']}{state}")  # noqa: T201
    print("---")  # noqa: T201
    for m in await ats.mappings(core, system):
        target = m.stage_id or " ".join(m.termination_reason_ids)
        kind = f" {m.termination_type}" if m.termination_type is not None else ""
        print(f"{m.reason_code}\t{m.reason_name}\t{m.action}{kind}\t{target}")  # noqa: T201
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = registry.load_settings()
    except ValueError as exc:
        print(f"配置错误 / bad settings: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings.tz, json_lines=settings.log_format == "json")
    if args.command not in ("serve", "migrate"):
        # Every command brings the schema up to date first; only serve and migrate say so.
        for name in QUIET_MIGRATION_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.command in ("serve", "migrate"):
        migrate(settings.database_url)
        if args.command == "serve":
            app = create_app(settings)
            app.on_startup.append(freeze_startup_heap)
            web.run_app(
                app,
                host=settings.host,
                port=settings.port,
                access_log=access_logger() if settings.access_log else None,
                access_log_class=PathAccessLogger,
                # aiohttp prints its "Running on …" banner; with JSON logs it is a log line too.
                print=_log_banner if settings.log_format == "json" else print,
            )
        return 0
    if args.command == "people":
        migrate(settings.database_url)
        people_commands = {
            "add": _people_add,
            "import": _people_import,
            "edit": _people_edit,
            "remove": _people_remove,
        }
        if args.people_command in people_commands:
            return asyncio.run(people_commands[args.people_command](settings, args))
        return asyncio.run(_people_list(settings))
    if args.command == "console-link":
        migrate(settings.database_url)
        return asyncio.run(_console_link(settings, args))
    if args.command == "reasons":
        migrate(settings.database_url)
        return asyncio.run(_reasons(settings, args))
    if args.command == "chat":
        logging.getLogger().setLevel(logging.WARNING)
        migrate(settings.database_url)
        return asyncio.run(_chat(settings, args))
    if args.command == "summary":
        migrate(settings.database_url)
        return asyncio.run(_summary_send(settings, args))
    if args.command == "notice":
        migrate(settings.database_url)
        if args.notice_command == "retry":
            return asyncio.run(_notice_retry(settings, args))
        if args.notice_command == "problems":
            return asyncio.run(_notice_problems(settings))
        return asyncio.run(_notice_test(settings, args))
    if args.command == "system":
        migrate(settings.database_url)
        return asyncio.run(_system(settings))
    if args.command == "ats":
        migrate(settings.database_url)
        return asyncio.run(_ats(settings, args))
    if args.command == "report":
        migrate(settings.database_url)
        return asyncio.run(_report_exits(settings, args))
    if args.command in ("demo", "events"):
        return _first_try(settings, args)
    return 2


def _first_try(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "events":
        if args.events_command == "check":
            return _events_check(settings, args)
        if args.events_command == "openapi":
            return _events_openapi(args)
        return asyncio.run(_events_send(settings, args))
    migrate(settings.database_url)
    return asyncio.run(_demo(settings, args))
