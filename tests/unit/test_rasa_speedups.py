"""The Rasa server's speed-ups (bot.run.rasa_speedups) answer exactly as the
code they replace."""

from __future__ import annotations

import pytest
from rasa.shared.core import events
from rasa.shared.utils.common import all_subclasses

from bot.run import rasa_speedups


def test_the_event_class_of_every_type_name_is_rasas():
    rasa_speedups.install()
    names = {cls.type_name for cls in all_subclasses(events.Event)}
    assert len(names) > 20
    for name in sorted(names):
        expected = next(c for c in all_subclasses(events.Event) if c.type_name == name)
        assert events.Event.resolve_by_type(name) is expected
        assert events.Event.resolve_by_type(name) is expected  # kept, the same
    # Stored events come back through it with their classes.
    back = events.deserialise_events(
        [
            {
                "event": "user",
                "text": "hi",
                "parse_data": {"intent": {"name": "greet"}},
            },
            {"event": "action", "name": "x"},
        ]
    )
    assert [type(e) for e in back] == [events.UserUttered, events.ActionExecuted]


def test_an_unknown_type_name_is_refused_or_defaulted_as_by_rasa():
    rasa_speedups.install()
    with pytest.raises(ValueError, match="Unknown event name"):
        events.Event.resolve_by_type("no_such_event")
    assert events.Event.resolve_by_type("topic") is None
    default = events.UserUttered
    assert events.Event.resolve_by_type("no_such_event", default) is default
    # a default is not remembered as the answer for the name
    with pytest.raises(ValueError):
        events.Event.resolve_by_type("no_such_event")
