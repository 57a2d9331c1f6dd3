"""The words people use for each thing the bot does (what they type, not what the bot says).

Kept as data so a new wording is one line: the verbs of each intent, the words that make a
message a question or a negation, the fillers that carry no meaning, and the standalone yes and no
answers to an open prompt. Read by ``bot.language.parse`` and ``bot.language.normalize``.
"""

from __future__ import annotations

import re

# Whole ASCII words (English, pinyin) → the Chinese word the rules read.
ASCII_WORDS: dict[str, str] = {
    "terminate": "终止",
    "stop": "终止",
    "end": "终止",
    "abort": "终止",
    "kill": "终止",
    "zhongzhi": "终止",
    "jieshu": "结束",
    "reschedule": "改期",
    "postpone": "改期",
    "gaiqi": "改期",
    "list": "进行中",
    "ongoing": "进行中",
    "running": "进行中",
    "status": "进度",
    "show": "查看",
    "check": "查看",
    "view": "查看",
    "chakan": "查看",
    "help": "帮助",
    "menu": "帮助",
    "bangzhu": "帮助",
    "todo": "待办",
    "todos": "待办",
    "tasks": "待办",
    "daiban": "待办",
    "stats": "统计",
    "report": "统计",
    "tongji": "统计",
    "cancel": "取消",
    "quxiao": "取消",
    "no": "否",
    "nope": "否",
    "ok": "好的",
    "okay": "好的",
    "okk": "好的",
    "go": "好",
    "move": "改到",
    "tomorrow": "明天",
    "today": "今天",
    "please": "",
    "pls": "",
    "plz": "",
    "to": "",
    "ahead": "好",
    "yes": "是",
    "y": "是",
    "yep": "是",
    "sure": "好的",
    "confirm": "确认",
    "queren": "确认",
    "console": "后台",
}

# Command words a hurried typist misspells by sound (中止, 终至, 重新安拍, 统记): the rules compare
# two characters' toneless pinyin with these and read the command word instead.
SOUNDS_LIKE: tuple[str, ...] = ("终止", "改期", "统计", "安排", "取消", "确认", "待办", "查看", "帮助", "结束")

# Words that carry no meaning for the rules (dropped before reading a standalone answer or
# taking what is left as a name).
FILLERS: tuple[str, ...] = (
    "麻烦你",
    "麻烦",
    "帮忙",
    "帮我",
    "给我",
    "一下子",
    "一下",
    "那个",
    "这个",
    "请你",
    "请",
    "谢谢你",
    "谢谢",
    "辛苦了",
    "辛苦",
    "小助手",
    "助手",
    "机器人",
    "老师",
    "亲",
    "哈",
    "啊",
    "呀",
    "哦",
    "噢",
    "喔",
    "呢",
    "嘛",
    "吧",
    "啦",
    "了",
    "的",
    "先",
)

# Particles that make a short answer a question (对吧? 是嘛? 好呢?): never fillers of a yes.
ASKING_PARTICLES: tuple[str, ...] = ("吧", "嘛", "呢", "么", "吗")

# A standalone yes to an open prompt: the whole message is made of these (and fillers, punctuation).
YES_WORDS: tuple[str, ...] = (
    "确认执行",
    "确认无误",
    "确定执行",
    "没问题",
    "没毛病",
    "就这个时间",
    "发吧",
    "发",
    "就是他",
    "就是她",
    "是他",
    "是她",
    "好嘞",
    "好哒",
    "嗯呢",
    "嗯呐",
    "嗯哪",
    "确认吧",
    "确认终止吧",
    "那就",
    "对头",
    "就这个",
    "就按这个",
    "按这个来",
    "可以的",
    "好吧",
    "行吧",
    "那就这样吧",
    "是的",
    "对的",
    "好的",
    "好滴",
    "嗯嗯",
    "确认",
    "确定",
    "同意",
    "执行",
    "可以",
    "好",
    "行",
    "是",
    "对",
    "嗯",
    "恩",
    "停吧",
    "终止吧",
    "改吧",
    "就这样",
    "就这么办",
    "没错",
    "搞定",
    "办吧",
    "去吧",
    "冲",
    "ok",
)
# Extra yes words for one kind of prompt: 确认终止 answers a termination, 确认改期 a reschedule.
YES_FOR: dict[str, tuple[str, ...]] = {
    "terminate": ("确认终止", "终止面试", "结束面试", "停止面试", "终止吧", "结束吧", "停掉吧", "停了吧", "关掉吧"),
    "reschedule": ("确认改期", "改期", "确认重新安排", "重新安排", "改吧"),
    "terminate_reschedule": ("确认终止", "确认改期", "终止并改期", "确认重新安排", "终止吧", "结束吧", "改吧"),
    # A candidate's 求助: a yes that names ending it (a plain 好的 could as well mean "I'll help").
    "help_request": (
        "确认终止",
        "确认终止吧",
        "终止吧",
        "同意终止",
        "同意退出",
        "停吧",
        "结束吧",
        "让他退",
        "让她退",
        "退吧",
    ),
}
# Agreeing to the exit a candidate asked for, with their name: 同意刘洋退出, 刘洋要退就让他退吧.
HELP_EXIT = re.compile(r"同意.{0,8}(?:退出|终止|结束)|让(?:他|她)退|要退就")
# A question about what already happened (为什么结束了, 停了吗): about the interview, not an order.
PAST_QUESTION = re.compile(
    r"为什么|为啥|怎么就|(?:结束|终止|停|退出)了(?:吗|没|么)|是不是已经|已经.{0,4}(?:结束|终止|停)"
)
# Words that start a no (算了算了,再观察下 / 取消吧,他又连上了 / 搞错了,不是王芳): safe to read as one.
NO_START = re.compile(
    r"^(?:算了|取消|不对|搞错|弄错|错了|先不|先别|别|不用|不要|不了|不行|不是|等等|等一下|稍等|否|撤回|撤销|手滑|点错|按错|发错)"
)
# A rebooking left for later (后面看情况再约, 改天再约): no new time is asked for now.
VAGUE_REBOOK = re.compile(r"(?:看情况|再说|以后|回头|改天|后面|之后|到时候)\s*(?:再)?(?:约|安排|面|联系)")
# Reported speech (王芳跟我说她不想面了): what a candidate said, not a request to act on it.
REPORTED = re.compile(r"(?:跟我|和我|对我|给我)?(?:说|讲|告诉|反馈|表示|称|提到|打电话)")
# Rebooking words strong enough to make 终止 + them one compound request without a time.
REBOOK = re.compile(r"重新约|重约|再约|改约|重新面|再面|重新安排|重新预约|重新开|重开|再开|重新来|再安排")
# A condition: 要是李明再掉线就终止吧 asks for nothing now.
CONDITION = re.compile(r"要是|如果|假如|万一|的话|假设|等.{0,6}(?:再|就)|以后再说")
# A shift of the booked time: 往后推一天, 推迟两小时, 提前半小时.
SHIFT = re.compile(
    r"(?P<dir>往后推|向后推|往后延|向后延|推迟|推后|延后|顺延|延期|往前提|提前|挪后|往后挪|延)\s*"
    r"(?P<n>\d{1,3}|[一二两三四五六七八九十半]{1,3})\s*(?:个)?\s*(?P<unit>天|小时|钟头|分钟|周|星期)"
)

# A standalone no: the whole message is made of these (and fillers, punctuation).
NO_WORDS: tuple[str, ...] = (
    "先不终止",
    "先不改",
    "先不要",
    "先不停",
    "不终止",
    "不用终止",
    "不要终止",
    "别终止",
    "不改",
    "不改期",
    "别停",
    "不要停",
    "不停",
    "等等",
    "等一下",
    "等下",
    "稍等",
    "算了",
    "不用",
    "不要",
    "不必",
    "不需要",
    "不了",
    "不行",
    "不对",
    "不是",
    "暂时不",
    "先不",
    "放弃操作",
    "取消",
    "撤销",
    "撤回",
    "否",
    "不",
    "别",
    "错了",
    "搞错了",
    "弄错了",
    "停止操作",
    "取消操作",
    "时间不对",
    "不对",
    "改主意了",
)

# Verbs of each intent (anywhere in the message). Order matters only for reading; the parser
# checks which kinds' verbs are present.
TERMINATE = re.compile(
    r"终止|中断|叫停|结束掉|不用继续|不必继续|不要继续|不再继续|别继续|先停掉|停掉|停止|停下来|停下|停了|先停|停一下|停吧|把.{0,12}停|关掉|关闭|掐掉|结束|取消.{0,10}(?:这场|那场|面试)|取消(?:他的|她的)"
    r"|不让他?她?面了|别让他?她?面了|作废|(?:^|[\s,,])停(?:[\s,,]|$)"
)
RESCHEDULE = re.compile(
    r"改期|改到|改成|改在|改时间|推迟|推后|往后推|延后|延期|顺延|挪到|挪一下|换到|换个时间|换时间|调到|调整到|调一下时间"
    r"|重新约|重约|再约|另约|改约|约到|重新安排|安排到|重新面|再面|重面|重新预约|重新开始|重新开|重开|再开|重新来|再来一次|再安排"
    r"|改.{0,6}时间|时间.{0,4}改|换.{0,4}时间|约(?=\s*[下明后今周这大\d□])|往后延|延后"
)
IN_PROGRESS = re.compile(
    r"进行中|正在进行|正在面|在面试的|谁在面|在面的|哪些人在面|几个在面|几个人在面|多少人在面|有人在面|在面吗|面试中"
    r"|谁还在面|都有谁在面|在线面试|正在进行的面试|还没结束|没结束的|未结束|还在进行|几场在面|有几场|一共有几|哪些面试|有哪些面"
)
SHOW = re.compile(
    r"退出原因|为什么退出|为啥退出|怎么退出的|几点|什么时候|啥时候|约的|约在|查看|查一下|查下|查查|看看|看下|看一下|瞧瞧|进度|情况|状态|怎么样|怎样了|如何了|咋样|答到第几|答了几|答到哪|第几题"
    r"|几道题|多少题|详情|面得|面到哪|还在面|在面没|在不在面|结果"
)
STATS = re.compile(
    r"统计|报表|汇总|日报|周报|月报|退出率|退出了多少|退出多少|终止了多少|终止多少|多少场|多少人退出|几场退出|退出情况"
    r"|退出的原因|退出原因分布|数据|什么原因退出|退出.{0,4}原因|原因.{0,6}退出|(?:终止|结束|退出|停)了?几场|一共.{0,6}(?:终止|退出|结束)|退出了几|退出几|多少人.{0,10}退出|几个.{0,4}退出|退出.{0,4}(?:几|多少)"
)
TODOS = re.compile(
    r"没处理|没做完|还有啥要|还有啥没|要处理的|待办|要跟进|需要跟进|跟进事项"
    r"|跟进的|待处理|我的任务|任务列表|还有什么没做|要做的事"
)
TODO_DONE = re.compile(r"(?:完成|做完|搞定|处理完|办完|已处理|已完成|弄好)")
# "How are the interviews going" without a name: the list of those in progress.
OVERVIEW = re.compile(r"现在的面试|当前面试|目前的面试|所有人|大家的|全部面试|面试情况|面试进度|整体进度")
HELP = re.compile(
    r"帮助|菜单|怎么用|如何使用|使用说明|说明书|能干啥|能干什么|能做什么|能做啥|会什么|会干啥|有什么功能|有哪些功能|功能"
    r"|命令|指令|用法|教程|你是谁|你好|在吗|hello|hi|能干嘛|能干吗|都能干|会干嘛|干嘛的|做什么的|干啥的|会些啥|会啥|会什么"
)
CONSOLE = re.compile(r"后台|网页版|控制台|管理页面|登录链接|登录地址|网页后台|电脑上看")
CONFIRM_EXIT = re.compile(r"^确认终止$")
ASSIST = re.compile(r"^协助继续$|^(?:帮|协助)(?:他|她)继续")

# A question: asks, does not order (an action word inside never starts the action).
QUESTION = re.compile(
    r"[??]|吗|么$|是不是|有没有|要不要|能不能|可不可以|可以吗|该不该|需不需要|用不用|怎么|如何|怎样|为什么|为啥|啥时候"
    r"|什么时候|多少|几个|几场|几题|第几|哪些|哪个|哪位|谁|是否|咋"
)
# A negation in front of an action word: 不要终止, 别停, 先不改, 不用取消.
NEGATION = re.compile(
    r"(?:不是要|并不是要|不是想|(?<!要)不要|(?<!用)不用|不必|(?<!需)不需要|别|先不|暂时不|暂不|还不|没必要|(?<!能)不能|不准|(?<!可)不可以|无需|甭|先别)"
    r"\s*(?:把.{0,12})?"
    r"(?:终止|结束|停|关|取消|改|推迟|挪|重新|中断|叫停|掐)"
)
# Reason-only statements (他不面了): the candidate quits; a request needs a verb too.
QUIT_WORDS = re.compile(r"不面了|不想面了|放弃了|不来了|不参加了")
# An answer with a number: "2", "第2个", "选2", "2号".
NUMBER_PICK = re.compile(r"^(?:第|选|选择|要)?\s*(\d{1,3})\s*(?:个|号|项|条|位)?$")
# A to-do number: "完成 12", "#12 完成了", "待办3做完了".
TODO_NUMBER = re.compile(r"#?(\d{1,9})")
# Periods for statistics.
PERIODS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"今天|今日|当天"), "今天"),
    (re.compile(r"这周|本周|这个星期|这星期|本星期|这礼拜|一周|7天|七天"), "本周"),
    (re.compile(r"这个月|本月|这月|当月|一个月|30天|三十天"), "本月"),
)
