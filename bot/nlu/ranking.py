"""Setting the intent an NLU component has decided on, for the rest of Rasa."""

from __future__ import annotations

from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message


def put_intent_first(message: Message, name: str, confidence: float) -> None:
    """Make ``name`` the message's intent, first in its ranking.

    Any earlier entry for ``name`` and any ``nlu_fallback`` entry leave the
    ranking, so the intent appears exactly once.
    """
    chosen = {"name": name, "confidence": confidence}
    ranking = [
        entry
        for entry in message.get(INTENT_RANKING_KEY) or []
        if entry.get("name") not in (name, DEFAULT_NLU_FALLBACK_INTENT_NAME)
    ]
    message.set(INTENT, chosen, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [chosen, *ranking], add_to_output=True)
