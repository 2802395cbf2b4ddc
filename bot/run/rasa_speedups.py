"""Where Rasa 3.6 spends a message's time for nothing, fixed in the Rasa
server process (installed by the patient channels, ``bot.channels.guard``).

Profiled here (py-spy on the Rasa server while one conversation asked
knowledge-base questions): more than half of the server's busy time went to
``RemoteAction._validate_action_result``, which calls ``jsonschema.validate``
on every action server response. That function first checks the *schema*
itself against its metaschema, then builds a new validator: the same fixed
schema, checked again for every message. Here the schema is checked once and
one validator kept; each response is validated exactly as before (the same
schema, the same errors, the same message added to them).

Profiled again under 20 concurrent conversations (2026-12-07), about a tenth
of the busy time went to ``Event.resolve_by_type``: every stored event read
back walks all of ``Event``'s subclasses (with ``inspect.isabstract`` on each)
to find the class of its type name, dozens of times per message. Here the
first walk's answer for a type name is kept: the same class Rasa's walk finds
first (the event classes are all imported before the first message).
"""

from __future__ import annotations

import functools
import logging

logger = logging.getLogger(__name__)

_installed = False


@functools.lru_cache(maxsize=1)
def _action_response_validator():
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, as jsonschema.validate does
    return validator_class(schema)


def _validate_action_result(self, result: dict) -> bool:
    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    try:
        _action_response_validator().validate(result)
        return True
    except ValidationError as error:
        # Rasa's own wording (rasa/core/actions/action.py).
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error


_EVENT_CLASSES: dict[str, type] = {}


def _resolve_event_by_type(type_name: str, default: type | None = None):
    found = _EVENT_CLASSES.get(type_name)
    if found is not None:
        return found

    found = _rasa_resolve_by_type(type_name, default)
    if found is not None and found is not default:
        _EVENT_CLASSES[type_name] = found
    return found


_rasa_resolve_by_type = None


def install() -> None:
    """Patch the Rasa server's classes (once per process)."""
    global _installed
    if _installed:
        return
    global _rasa_resolve_by_type
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import Event

    RemoteAction._validate_action_result = _validate_action_result
    _rasa_resolve_by_type = Event.resolve_by_type
    Event.resolve_by_type = staticmethod(_resolve_event_by_type)
    _installed = True
