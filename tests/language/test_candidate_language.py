"""What a candidate writes to the customer-service chat, read by ``bot.language.candidate``: an ask
for a person (or to stop) opens a help request; a question or a negation asks for nothing."""

from __future__ import annotations

import pytest

from bot.language.candidate import CandidateAsk, read
from bot.language.normalize import normalize


@pytest.mark.parametrize(
    ("text", "ask"),
    [
        ("求助:摄像头打不开", CandidateAsk("help", reason="摄像头打不开")),
        ("我要求助 网络断了", CandidateAsk("help", reason="网络断了")),
        ("求助", CandidateAsk("help")),
        ("需要帮助", CandidateAsk("help")),
        ("转人工", CandidateAsk("help")),
        ("联系HR", CandidateAsk("help")),
        ("我不想面了", CandidateAsk("help", reason="我不想面了", wants_exit=True)),
        ("我要退出", CandidateAsk("help", reason="我要退出", wants_exit=True)),
        ("求助,我要退出", CandidateAsk("help", reason="我要退出", wants_exit=True)),
        ("求助:我不想面了", CandidateAsk("help", reason="我不想面了", wants_exit=True)),
        ("不需要求助", CandidateAsk("status")),
        ("不用人工了,好了", CandidateAsk("status")),
        ("我不想退出", CandidateAsk("status")),
        ("我可以退出吗?", CandidateAsk("status")),
        ("怎么求助", CandidateAsk("status")),
        ("你好,我想问一下面试", CandidateAsk("status")),
        ("13800001234", CandidateAsk("status")),
        ("", CandidateAsk("status")),
    ],
)
def test_a_candidate_s_words(text: str, ask: CandidateAsk) -> None:
    assert read(normalize(text)) == ask
