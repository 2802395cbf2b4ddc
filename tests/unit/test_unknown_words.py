"""The unknown-words fallback, trained and loaded through Rasa's model storage."""

from __future__ import annotations

from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.unknown_words import UnknownWordsFallback

TOKENIZER = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())


def message(text: str, training: bool = False) -> Message:
    """A tokenised message: a training example, or a parsed one at run time."""
    intent = "ask_waxing" if training else {"name": "ask_waxing", "confidence": 0.9}
    msg = Message(data={TEXT: text, INTENT: intent})
    msg.set(TOKENS_NAMES[TEXT], TOKENIZER.tokenize(msg, TEXT))
    return msg


def test_a_message_without_a_known_word_falls_back_after_a_reload(tmp_path):
    storage, resource = LocalModelStorage(tmp_path), Resource("unknown_words")
    component = UnknownWordsFallback.create({}, storage, resource, None)
    component.train(TrainingData([message("can I wax on accutane", training=True)]))
    loaded = UnknownWordsFallback.load({}, storage, resource, None)
    checked = loaded.process(
        [message("xkcd lorem ipsum"), message("??!!"), message("WAX plz?")]
    )
    intents = [m.get(INTENT)["name"] for m in checked]
    assert intents == ["nlu_fallback", "nlu_fallback", "ask_waxing"]
