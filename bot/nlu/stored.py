"""A base for the project's trainable Rasa NLU components whose learned state
is one file in the model archive: Rasa's create/load plumbing, written once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage


class StoredComponent(GraphComponent):
    """Subclasses name ``STATE_FILE`` and implement ``read_state`` (load) and
    ``write_state`` (after training); the state is ``self.state``."""

    STATE_FILE: ClassVar[str]

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        state: Any = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.state = state

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> StoredComponent:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> StoredComponent:
        with model_storage.read_from(resource) as directory:
            state = cls.read_state(directory / cls.STATE_FILE)
        return cls(config, model_storage, resource, state)

    def persist(self, state: Any) -> Resource:
        """Keep ``state`` as the component's learned state, in the model."""
        self.state = state
        with self._model_storage.write_to(self._resource) as directory:
            self.write_state(directory / self.STATE_FILE, state)
        return self._resource

    @staticmethod
    def read_state(path: Path) -> Any:
        raise NotImplementedError

    @staticmethod
    def write_state(path: Path, state: Any) -> None:
        raise NotImplementedError
