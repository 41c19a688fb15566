"""``event_parser``: Powertools' decorator of the same name, for our own models only.

Powertools' parser package imports a pydantic model for every AWS event source it knows when it loads:
0.2-0.3 s of every cold start, for handlers that only ever receive our payloads. This does what its
``@event_parser(model=...)`` does for a model of ours: validate the event (a dict, or a JSON string) into
the model, let pydantic's ``ValidationError`` propagate, and call the handler with the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def event_parser(*, model: type[M]) -> Callable[[Callable[[M, Any], R]], Callable[[Any, Any], R]]:
    """Validate the event into ``model`` before the handler sees it."""

    def decorate(handler: Callable[[M, Any], R]) -> Callable[[Any, Any], R]:
        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> R:
            parsed = model.model_validate_json(event) if isinstance(event, str) else model.model_validate(event)
            return handler(parsed, context)

        return wrapper

    return decorate
