"""exactextract's operation syntax: ``name=op`` and arguments inside an operation.

``"total=sum"`` names a column; ``"mean(coverage_weight=none)"``,
``"count(min_coverage_frac=0.49)"``, ``"sum(default_value=0)"`` carry
exactextract's per-operation options. zonal_dask computes a call with one set
of options, so the arguments become the call's (``coverage``,
``min_coverage_frac``, ``default_value``, ``default_weight``) when every
operation of the call carries the same ones; operations that differ are
refused (two calls give them), never computed with options they did not ask
for. ``quantile(q=F, ...)`` keeps its ``q``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import StatisticError

# exactextract's argument -> the zonal_stats option it is
ARGUMENTS = {
    "coverage_weight": "coverage",
    "min_coverage_frac": "min_coverage_frac",
    "default_value": "default_value",
    "default_weight": "default_weight",
}
_NAMED = re.compile(r"^\s*([^=(]+?)\s*=\s*(.+?)\s*$")
_CALL = re.compile(r"^\s*([\w.]+)\s*\((.*)\)\s*$")


def split_names(text: str) -> list[str]:
    """Operations in one string, split on commas and spaces outside brackets:
    ``"count, mean(coverage_weight=none, default_value=0)"`` is two."""
    names, current, depth = [], "", 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and (char == "," or char.isspace()):
            names.append(current)
            current = ""
        else:
            current += char
    names.append(current)
    return [n for n in names if n.strip()]


def parse_operations(stats: Any) -> tuple[Any, dict[str, Any]]:
    """``stats`` without exactextract's syntax, and the options it carried.

    Returns the statistics as ``statistics.names.resolve`` takes them (a
    mapping from column name to statistic when some are named ``name=op``)
    and the options the operations' arguments give the call.

    Raises
    ------
    StatisticError
        An unknown argument, a value that is not one, or operations whose
        arguments differ.
    """
    if isinstance(stats, str):
        stats = split_names(stats)
    entries: list[tuple[str | None, Any]]
    if isinstance(stats, Mapping):
        entries = [(str(k), v) for k, v in stats.items()]
    elif isinstance(stats, Iterable):
        # a function in a list is named by its name, as exactextract names it
        entries = [(s.__name__, s) if callable(s) else (None, str(s)) for s in stats]
    else:
        return stats, {}
    plain: list[tuple[str | None, Any]] = []
    arguments: list[tuple[str, dict[str, Any]]] = []
    for column, entry in entries:
        if callable(entry):
            plain.append((column, entry))
            arguments.append((column or "function", {}))
            continue
        named = _NAMED.match(entry) if column is None else None
        if named and "(" not in named.group(1):
            column, entry = named.group(1), named.group(2)
        name, args = _operation(entry)
        plain.append((column, name))
        arguments.append((entry.strip(), args))
    options = _common(arguments)
    if all(column is None for column, _ in plain):
        return [name for _, name in plain], options
    from .names import column_name

    return {column or column_name(name): name for column, name in plain}, options


def _operation(entry: str) -> tuple[str, dict[str, Any]]:
    """``mean(coverage_weight=none)`` -> ``("mean", {"coverage": "none"})``;
    a quantile keeps its ``q`` in its name."""
    call = _CALL.match(entry)
    if call is None:
        return entry.strip(), {}
    name, q, args = call.group(1), None, {}
    for part in call.group(2).split(","):
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key == "q" and name == "quantile":
            q = value
        elif key in ARGUMENTS and value:
            args[ARGUMENTS[key]] = _value(ARGUMENTS[key], value, entry)
        else:
            known = ", ".join([*ARGUMENTS, "q (quantile)"])
            raise StatisticError(
                f"{entry!r}: unknown argument {part.strip()!r}; exactextract's "
                f"arguments here are {known}"
            )
    if name == "quantile":
        return f"quantile(q={q})", args
    return name, args


def _value(option: str, text: str, entry: str) -> Any:
    if option == "coverage":
        return text.strip("'\"")
    try:
        return float(text)
    except ValueError:
        raise StatisticError(f"{entry!r}: {text!r} is not a number") from None


def _common(arguments: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The one set of arguments of every operation, or a refusal."""
    if not any(args for _, args in arguments):
        return {}
    first_entry, first = arguments[0]
    for entry, args in arguments[1:]:
        if args != first:
            raise StatisticError(
                f"operations {first_entry!r} and {entry!r} carry different "
                f"arguments; a call computes every statistic with one set: give "
                f"them the same arguments, or make two calls"
            )
    return first
