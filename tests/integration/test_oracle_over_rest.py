"""The topic oracle against the running bot: each question, asked over REST in
a conversation of its own, is answered with the fact written next to it in
tests/data/topic_oracle.yml (which is literal, not derived from the code)."""

from __future__ import annotations

import uuid

import pytest
import yaml

from bot import settings

pytestmark = pytest.mark.integration

ORACLE = yaml.safe_load(
    (settings.PROJECT_ROOT / "tests" / "data" / "topic_oracle.yml").read_text()
)["questions"]


@pytest.mark.parametrize("row", ORACLE, ids=[row["question"] for row in ORACLE])
def test_the_running_bot_answers_each_oracle_question_with_its_fact(bot, row):
    sender = f"oracle-{uuid.uuid4().hex}"
    bot.texts(sender, "hi")  # the welcome comes first; the answer is on its own
    answer = " ".join(bot.texts(sender, row["question"])).lower()
    assert any(part.lower() in answer for part in row["fact"].split("|")), answer
