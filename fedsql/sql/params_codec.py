"""Query parameters to and from JSON, so hub and silos bind exactly the same typed values.

Parameters travel with the analyst's SQL as JSON text: a list (``?`` placeholders) or an object
(named ``$name`` / ``:name`` placeholders). JSON has no dates, so a ``datetime.date`` travels as
``{"$date": "YYYY-MM-DD"}``.

>>> import datetime
>>> decode_params(encode_params([1, "a'b", datetime.date(2024, 1, 2), None]))
[1, "a'b", datetime.date(2024, 1, 2), None]
>>> decode_params(encode_params({"lo": 2.5}))
{'lo': 2.5}
>>> decode_params("")
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence

from fedsql.errors import DataError

Params = Sequence[object] | Mapping[str, object] | None


def _encode_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError("query parameters must be finite numbers")
        return value
    if isinstance(value, _dt.datetime):
        raise DataError("timestamp parameters are not supported; pass a datetime.date")
    if isinstance(value, _dt.date):
        return {"$date": value.isoformat()}
    raise DataError(
        f"query parameters must be int, float, str, bool, None or datetime.date, not "
        f"{type(value).__name__}"
    )


def _decode_value(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$date"} and isinstance(value["$date"], str):
            try:
                return _dt.date.fromisoformat(value["$date"])
            except ValueError:
                raise DataError("a date parameter is not an ISO date") from None
        raise DataError("query parameters must be scalars")
    if isinstance(value, list):
        raise DataError("query parameters must be scalars")
    return value


def encode_params(params: Params) -> str:
    """Render parameters as canonical JSON text ("" when there are none).

    Args:
        params: A sequence for ``?`` placeholders, a mapping for named ones, or None.

    Returns:
        Compact JSON text with sorted keys.

    Raises:
        DataError: A value has a type that cannot be bound.
    """
    if params is None:
        return ""
    if isinstance(params, Mapping):
        body: object = {str(k): _encode_value(v) for k, v in params.items()}
    elif isinstance(params, str | bytes):
        raise DataError("query parameters must be a sequence or a mapping, not a string")
    else:
        body = [_encode_value(v) for v in params]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)


def decode_params(text: str) -> list[object] | dict[str, object] | None:
    """Parse the JSON text made by :func:`encode_params`.

    Raises:
        DataError: The text is not parameters in that form.
    """
    if not text:
        return None
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        raise DataError("query parameters are not valid JSON") from None
    if isinstance(body, list):
        return [_decode_value(v) for v in body]
    if isinstance(body, dict):
        return {str(k): _decode_value(v) for k, v in body.items()}
    raise DataError("query parameters must be a JSON list or object")
