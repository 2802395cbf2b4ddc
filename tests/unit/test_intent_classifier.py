"""The intent classifier (bot/nlu/intent_classifier.py): trained, stored in
the model, loaded back, and ranking intents with probabilities."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.intent_classifier import SentenceIntentClassifier

EXAMPLES = {
    "ask_blood_donation": ["can i donate blood on accutane", "is giving blood ok",
                           "can I give blood while on isotretinoin"],
    "ask_dryness": ["my lips are so dry", "why is my skin peeling",
                    "how do I deal with dry skin"],
    "greet": ["hello", "hi there", "good morning"],
}  # fmt: skip


def test_trained_stored_and_loaded_it_ranks_a_new_wording_first(tmp_path: Path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("intent_classifier")
    training = TrainingData(
        [
            Message(data={"text": t, "intent": i})
            for i, ts in EXAMPLES.items()
            for t in ts
        ]
    )
    SentenceIntentClassifier.create({}, storage, resource, None).train(training)
    loaded = SentenceIntentClassifier.load({}, storage, resource, None)
    message = Message(data={"text": "am I allowed to donate my blood?"})
    loaded.process([message])
    ranking = message.get("intent_ranking")
    assert message.get("intent")["name"] == "ask_blood_donation" == ranking[0]["name"]
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-6)
    assert [r["confidence"] for r in ranking] == sorted(
        (r["confidence"] for r in ranking), reverse=True
    )


def test_its_probabilities_are_scikit_learns():
    """The contiguous-coefficient shortcut gives predict_proba's numbers."""
    from bot.nlu.intent_classifier import IntentModel

    texts = [t for ts in EXAMPLES.values() for t in ts]
    intents = [i for i, ts in EXAMPLES.items() for _ in ts]
    model = IntentModel(SentenceIntentClassifier.get_default_config())
    model.fit(texts, intents)
    features = model.features(["can i give blood", "hello", "dry lips", "zzz"])
    expected = model.regression.predict_proba(features)
    assert model.probabilities(features) == pytest.approx(expected, abs=1e-9)
