"""Every intent has an answer, every answer can be reached, and the training
data is rich enough: the links between domain, rules, NLU data and content."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data

from bot import settings
from bot.content.entries import read_knowledge
from bot.content.topics import topic_map

DOMAIN = yaml.safe_load((settings.PROJECT_ROOT / "domain.yml").read_text())
RULES = yaml.safe_load((settings.DATA_DIR / "rules.yml").read_text())["rules"]
NLU = load_data(str(settings.DATA_DIR / "nlu"))
ENTRIES = read_knowledge()
TOPICS = topic_map()
# Topics reached without an intent (see actions/actions.py and bot/content/answers.py).
TRIGGERS = {
    "session_start",
    "fallback",
    "follow_up_without_topic",
    "close_topics",
    "concern",
    "concern_disclosure",
    "crisis",
    "possible_risk",
    "safety_answer_no",
    "after_crisis",
    "sms_help",
    "sms_opt_out",
    "sms_opt_in",
    "forget_done",
    "forget_kept",
    "forget_failed",
    "rate_limited",
}


def rule_actions() -> dict[str, set[str]]:
    """intent -> the actions the rules run for it."""
    mapping: dict[str, set[str]] = {}
    for rule in RULES:
        steps = rule["steps"]
        intents = [s["intent"] for s in steps[0].get("or", [steps[0]])]
        for intent in intents:
            mapping.setdefault(intent, set()).add(steps[1]["action"])
    return mapping


RULE_ACTIONS = rule_actions()


# Actions that answer an intent's own topic, and those that answer from context.
TOPIC_ACTIONS = {
    "action_answer_topic", "action_handle_crisis", "action_handle_concern",
    "action_forget_conversation",
}  # fmt: skip
CONTEXT_ACTIONS = {"ask_follow_up": "action_answer_follow_up"}


@pytest.mark.parametrize("intent", DOMAIN["intents"])
def test_every_intent_maps_to_a_knowledge_entry(intent):
    actions = RULE_ACTIONS.get(intent)
    assert actions, f"no rule answers {intent}"
    (action,) = actions
    if intent in CONTEXT_ACTIONS:
        assert action == CONTEXT_ACTIONS[intent]
    else:
        assert action in TOPIC_ACTIONS
        topic = TOPICS.for_intent(intent)
        assert topic, f"{intent} has no topic in topics.yml"
        assert any(e.topic == topic.id and e.facet is None for e in ENTRIES)


def test_the_domain_has_no_responses_outside_the_knowledge_base():
    assert not DOMAIN.get("responses")


def test_every_topic_intent_is_in_the_domain():
    intents = {t.intent for t in TOPICS.topics if t.intent}
    assert intents <= set(DOMAIN["intents"])


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_every_entry_is_reachable(entry):
    topic = TOPICS.topic(entry.topic)
    if topic.intent:
        assert RULE_ACTIONS[topic.intent] <= TOPIC_ACTIONS
    else:
        assert topic.trigger in TRIGGERS
    if entry.facet:
        # A facet entry is reached when NLU extracts that facet value.
        values = {
            e.get("value")
            for m in NLU.training_examples
            for e in m.get("entities") or []
            if e["entity"] == "facet"
        }
        assert entry.facet in values, f"no training example extracts {entry.facet}"


@pytest.mark.parametrize("intent", DOMAIN["intents"])
def test_every_intent_has_at_least_25_training_examples(intent):
    counts = Counter(m.get("intent") for m in NLU.intent_examples)
    assert counts[intent] >= 25


def test_no_training_example_is_given_two_intents():
    seen: dict[str, str] = {}
    for message in NLU.intent_examples:
        text = message.get("text").strip().lower()
        assert seen.setdefault(text, message.get("intent")) == message.get("intent")


@pytest.mark.parametrize(
    "brand",
    ["accutane", "absorica", "claravis", "amnesteem", "zenatane", "myorisan"],
)
def test_brand_names_map_to_one_drug_value(brand):
    assert NLU.entity_synonyms.get(brand) == "isotretinoin"
