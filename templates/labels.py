"""Chinese labels for the codes stored in rows (notice kinds, channels, statuses, sources, actions).

One place for every code a person might otherwise read raw. Templates use them through the
``label`` filter (``{{ notice.kind|label("notice_kind") }}``); handlers through ``label(...)``.
An unknown code is shown as itself, so a new kind degrades to its id instead of breaking a reply.
"""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "interview_status": {
        "scheduled": "待开始",
        "in_progress": "进行中",
        "completed": "已完成",
        "terminated": "已终止",
    },
    # As a candidate reads it in the customer-service chat (before it starts it is 待面试 to them).
    "candidate_interview_status": {
        "scheduled": "待面试",
        "in_progress": "进行中",
        "completed": "已完成",
        "terminated": "已终止",
    },
    "notice_kind": {
        "terminated": "面试终止通知",
        "rescheduled": "改期通知",
        "guide": "操作指引",
        "before_1h": "开始前1小时提醒",
        "at_start": "开始提醒",
        "after_30m": "作答30分钟提醒",
        "idle_warning": "超时预警",
        "help_contact_hr": "请联系HR",
        "hr_terminated": "终止通知(HR)",
        "hr_rescheduled": "改期通知(HR)",
        "hr_after_30m": "作答30分钟通知(HR)",
        "help_requested": "求助提示",
        "help_reminder": "求助提醒",
        "daily_summary": "管理者日报",
        "shared": "共享通知",
        "interview_shared": "共享通知",
        "reply": "聊天回复",
        "notice_cut_off": "通知中断提示",
        "termination_outcome": "终止结果通知",
        "card_update": "卡片更新",
        "admin_test": "测试通知",
        "ats_exit": "写回招聘系统",
        "ats_failed": "招聘系统写回失败提示",
    },
    # One call writing an exit back to a recruiting system (bot.services.ats.Call).
    "ats_call": {
        "interview": "记录AI面试",
        "transfer": "投递转阶段",
        "terminate": "终止投递",
    },
    "channel": {
        "kf": "微信客服",
        "sms": "短信",
        "email": "邮件",
        "wecom": "企业微信",
        "dingtalk": "钉钉",
        "feishu": "飞书",
        "none": "无可用渠道",
        "wecom_robot": "企业微信群机器人",
        "wecom_aibot": "企业微信智能机器人",
        "wecom_aibot_ws": "企业微信智能机器人(长连接)",
        "wecom_inbox": "企业微信收到的消息",
        "dingtalk_robot": "钉钉群机器人",
        "dingtalk_inbound": "钉钉收到的消息",
        "feishu_group": "飞书群",
        "feishu_hire": "飞书招聘",
        "feishu_inbound": "飞书收到的消息",
        "console": "终端聊天",
    },
    "notice_status": {
        "pending": "等待发送",
        "sending": "发送中",
        "sent": "已送出",
        "dead": "未送达",
        "cancelled": "已取消",
    },
    "attempt_result": {
        "started": "发送中",
        "sent": "已送出",
        "failed": "失败待重试",
        "rejected": "失败,此渠道放弃",
        "unknown": "结果未知,不重发",
    },
    # Delivery failures people can act on (bot.delivery.SendProblem).
    "send_problem": {
        "no_conversation": "候选人没有微信客服会话",
        "window_closed": "距候选人最后一条消息已超过48小时",
        "reply_quota": "本轮已回复5条,需等候选人再次发消息",
        "recipient_refused": "收件人被拒绝",
        "no_permission": "应用缺少所需权限,请管理员在开放平台开通后点重试",
    },
    "source": {
        "chat": "聊天命令",
        "console": "网页后台",
        "timeout": "超时自动终止",
        "candidate_request": "候选人请求",
        "admin_api": "管理接口",
        "platform": "面试平台",
        "cli": "命令行",
    },
    # Operators that are not people.
    "operator": {
        "system": "系统",
        "candidate": "候选人本人",
        "platform": "面试平台",
    },
    "audit_action": {
        "reminders.cancelled": "提醒已取消",
        "interview.scheduled": "已预约",
        "interview.started": "开始面试",
        "interview.answer_saved": "保存作答",
        "interview.completed": "完成面试",
        "interview.help_requested": "候选人求助",
        "interview.terminated": "终止面试",
        "interview.terminate_failed": "终止失败",
        "interview.rescheduled": "重新安排",
        "terminate.requested": "发起终止",
        "notice.fallback": "通知改用其他渠道",
        "notice.dead": "通知未送达",
        "help.assist": "协助继续",
        "interview.shared": "共享面试",
        "todo.done": "完成待办",
        "help.escalated": "求助升级",
        "notice.retried": "重试通知",
        "reschedule.requested": "发起改期",
        "terminate_reschedule.requested": "发起终止并改期",
        "terminate.cancelled": "取消终止",
        "reschedule.cancelled": "取消改期",
        "terminate_reschedule.cancelled": "取消终止并改期",
        "notice.superseded": "通知被新通知取代",
        "command.refused": "命令被拒绝",
        "llm.proposed": "模型理解的请求",
        "console.link": "获取后台登录链接",
        "console.login": "登录网页后台",
        "console.login_refused": "后台登录被拒绝",
        "console.login_throttled": "后台登录失败过多,暂停该地址登录",
        "console.logout": "退出网页后台",
        "reason.added": "新增退出原因",
        "reason.updated": "修改退出原因",
        "reason.enabled": "启用退出原因",
        "reason.disabled": "停用退出原因",
        "reason.reordered": "调整原因顺序",
        "reason.deleted": "删除退出原因",
        "person.added": "添加人员",
        "person.updated": "修改人员",
        "person.revoked": "移除人员",
    },
    "event_type": {
        "interview.scheduled": "已预约",
        "interview.started": "开始面试",
        "interview.activity": "作答中",
        "interview.answer_saved": "保存作答",
        "interview.completed": "完成面试",
        "interview.help_requested": "候选人求助",
    },
    "reminder_state": {"pending": "待发送", "claimed": "发送中", "sent": "已发送", "cancelled": "已取消"},
    # Why a reminder was cancelled (``Reminder.note``; "interview <status>" is read by its status).
    "reminder_note": {
        "planned after its time": "安排时提醒时间已过,不再发送",
        "interview": "面试{status},不再发送",
    },
    # The 系统 page: each switchable feature (its English name in the start-up summary) and why it is off.
    "feature": {
        "admin API": "管理接口",
        "platform events API": "接收面试平台事件",
        "platform calls": "调用面试平台(保存作答、终止面试)",
        "email notices": "邮件通知",
        "SMS notices": "短信通知",
        "DingTalk robot in http mode": "钉钉机器人(HTTP 回调)",
        "DingTalk robot in stream mode": "钉钉机器人(长连接)",
        "DingTalk custom robot": "钉钉群自定义机器人",
        "Feishu bot in http mode": "飞书机器人(HTTP 回调)",
        "Feishu bot in ws mode": "飞书机器人(长连接)",
        "Feishu summary group": "飞书日报群",
        "Feishu Hire write-back": "飞书招聘写回(退出记入候选人投递)",
        "WeCom app": "企业微信自建应用",
        "WeCom customer service kf": "微信客服(通知候选人)",
        "WeCom AI bot": "企业微信智能机器人",
        "WeCom AI bot long connection": "企业微信智能机器人长连接",
        "WeCom group robot": "企业微信群机器人",
    },
    "feature_why": {
        "unset": "未设置 {names}",
        "off": "{names} 未开启",
        "invalid": "{names} 格式不正确",
        "no_template": "{names} 缺少这些通知的模板:{kinds}",
        "needs": "需要先配置{what}",
        "other": "配置不完整,详见服务启动日志",
        "separator": "、",
        "or": " 或 ",
    },
    "system": {"unknown_version": "未知"},
    # What a person's own id is called on each platform (for 你还没有登记).
    "account": {
        "wecom": "企业微信账号",
        "dingtalk": "钉钉 userId",
        "feishu": "飞书 user_id(或 open_id)",
        "console": "控制台用户名",
    },
    # Why a channel of the notice plan cannot reach the candidate.
    "unreachable": {
        "kf:no_contact": "候选人没有微信客服会话",
        "kf:disabled": "微信客服未启用",
        "sms:no_contact": "候选人没有手机号",
        "sms:disabled": "短信未配置",
        "email:no_contact": "候选人没有邮箱",
        "email:disabled": "邮件未配置",
    },
    # One line per command for 帮助, by the command's first name.
    "command_help": {
        "终止面试": "提前结束一场面试:先保存作答,确认后终止并通知候选人",
        "确认": "确认你刚发起的终止(5 分钟内有效)",
        "取消": "放弃你刚发起、还没确认的操作",
        "进行中": "列出正在进行的面试和各自的作答进度",
        "查看": "查看一场面试的状态、退出记录和候选人通知的送达情况",
        "重新安排": "给面试改时间;已终止的面试会重新开放",
        "统计": "按原因统计提前结束的面试",
        "待办": "列出你未完成的跟进待办",
        "完成": "把一条待办标记为完成",
        "授权": "登记同事并设置角色(管理员、经理、HR),或取消授权",
        "共享": "让另一位 HR 也能查看和处理这场面试",
        "确认终止": "同意候选人的求助,结束其面试",
        "协助继续": "不结束面试,由你联系候选人协助继续",
        "后台": "获取网页后台的一次性登录链接(仅单聊)",
        "帮助": "列出你能用的命令",
    },
    # How each command is typed (帮助 and usage replies) and one example; keyed by its first name.
    "command_usage": {
        "终止面试": "终止面试 <姓名或面试编号> [原因]",
        "重新安排": "重新安排 <姓名或面试编号> <时间>",
        "统计": "统计 [今天|本周|本月]",
        "完成": "完成 <待办编号>",
        "授权": "授权 <姓名或用户ID> <管理员|经理|HR|取消>  新成员:授权 <用户ID> <角色> <姓名>",
        "查看": "查看 <姓名或面试编号>",
        "共享": "共享 <姓名或面试编号> <HR姓名或用户ID>",
    },
    "command_example": {
        "终止面试": "终止面试 张三 候选人放弃",
        "重新安排": "重新安排 张三 明天下午2点",
        "统计": "统计 本周",
        "完成": "完成 12",
        "授权": "授权 hr02 HR 赵先生",
        "查看": "查看 张三",
        "共享": "共享 张三 赵先生",
    },
    # Words inside chat replies that code puts together.
    "chat": {
        "apology": "抱歉,处理时出错了,请稍后重试。",
        "unscheduled": "未排期",
        "none": "无",
        "list_separator": "、",
    },
    # Titles of confirm replies (cards), keyed by the prompt's action.
    "reply_title": {
        "terminate": "确认终止面试",
        "reschedule": "确认重新安排",
        "terminate_reschedule": "确认终止并重新安排",
    },
    # What a request would do, for "this state cannot be …" (不能终止).
    "doing": {
        "terminate": "终止",
        "reschedule": "改期",
        "show": "查看",
    },
    # What an open question or prompt is about (PendingAction.action), for reminders.
    "pending_action": {
        "terminate": "确认终止面试",
        "reschedule": "确认重新安排",
        "terminate_reschedule": "确认终止并重新安排",
        "terminate.pick_interview": "选择要终止的面试",
        "terminate.pick_reason": "选择终止原因",
        "reschedule.pick_interview": "选择要改期的面试",
        "reschedule.ask_hour": "补充改期的具体时间",
        "reschedule.ask_day": "补充改期的日期",
        "reschedule.ask_time": "补充改期的时间",
        "terminate_reschedule.ask_hour": "补充重新安排的具体时间",
        "terminate_reschedule.ask_day": "补充重新安排的日期",
        "terminate_reschedule.pick_reason": "选择终止原因",
        "help.pick_reason": "选择终止原因",
        "share.pick_interview": "选择要共享的面试",
    },
    # What an admin may type for a role in 授权 (matched as typed, then lower-cased).
    "role_words": {
        "管理员": "admin",
        "admin": "admin",
        "经理": "manager",
        "主管": "manager",
        "manager": "manager",
        "hr": "hr",
        "HR": "hr",
        "招聘": "hr",
    },
    # What an admin may type in 授权 to take someone's access away.
    "revoke_words": {"取消": "revoke", "撤销": "revoke", "移除": "revoke"},
    # The 统计 page and its CSV export (bot/services/stats.py).
    "stats": {
        "no_owner": "未指定HR",
        "no_position": "未填写岗位",
    },
    "stats_period": {
        "today": "今天",
        "week": "本周",
        "month": "本月",
        "custom": "自定义",
    },
    "exit_csv": {
        "at": "时间",
        "candidate": "候选人",
        "position": "岗位",
        "reason": "原因",
        "outcome": "结果",
        "operator": "操作人",
        "source": "来源",
        "note": "备注",
    },
    "role": {
        "admin": "管理员",
        "manager": "经理",
        "hr": "HR",
    },
    # Fields of a person, as the 人员 page's import preview names a change.
    "person_field": {"name": "姓名", "role": "角色", "mobile": "手机", "email": "邮箱"},
    # Import preview rows (bot/services/people_import.py).
    "import_action": {
        "add": "新增",
        "change": "修改",
        "unchanged": "不变",
        "error": "错误,跳过",
    },
    # Button labels of confirm replies, keyed by what a press does.
    "button": {
        "terminate": "确认终止",
        "reschedule": "确认改期",
        "terminate_reschedule": "确认终止并改期",
        "cancel": "取消",
    },
}


def label(code: str | None, group: str) -> str:
    """The Chinese label of ``code`` in ``group``; the code itself when there is none."""
    if code is None:
        return ""
    return LABELS.get(group, {}).get(code, code)
