"""The arithmetic of ``expr`` derived columns: + - * /, unary minus, parentheses, ``min`` and
``max`` of two or more values, numbers and column names.

Parsed with ``ast`` and evaluated node by node, never with ``eval``: a use case file must not
be able to run code.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def _divide(left: Any, right: Any) -> Any:
    """Division where a zero divisor gives a missing value, not infinity or an error."""
    import pandas as pd

    if isinstance(right, pd.Series):
        return left / right.where(right != 0)
    return left / right if right != 0 else math.nan


_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
}
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd, ast.Name, ast.Load)
_FUNCTIONS = ("min", "max")  # of two or more values, row by row; missing if any is missing


def _is_function_call(node: ast.AST) -> bool:
    """``min(a, b, ...)`` or ``max(...)``: a known name, two or more plain arguments."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and len(node.args) >= 2
        and not node.keywords
        and not any(isinstance(a, ast.Starred) for a in node.args)
    )


def _function_names(tree: ast.AST) -> set[int]:
    """The ids of the name nodes that call a function (``max`` in ``max(a, b)``), which are
    not columns."""
    return {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}


def parse_expr(text: str) -> ast.expr:
    """The expression's tree, refused unless it is arithmetic on numbers and names, with
    ``min`` and ``max`` of two or more values."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"expr {text!r} is not an arithmetic expression") from None
    functions = _function_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            ok = isinstance(node.value, int | float) and not isinstance(node.value, bool)
        else:
            ok = (
                isinstance(node, _ALLOWED)
                or type(node) in _OPERATORS
                or _is_function_call(node)
                or id(node) in functions
            )
        if not ok:
            raise ValueError(
                f"expr {text!r}: only + - * /, unary minus, parentheses, min(a, b, ...),"
                f" max(a, b, ...), numbers and column names are allowed (found"
                f" {type(node).__name__})"
            )
    return tree.body


def column_names(text: str) -> list[str]:
    """The columns an expression reads, each once, in order (not ``min`` or ``max``)."""
    tree = parse_expr(text)
    functions = _function_names(tree)
    names = (n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in functions)
    return list(dict.fromkeys(names))


def evaluate(node: ast.expr, df: pd.DataFrame) -> Any:
    """The value of a parsed expression on the rows of ``df``: a Series, or a number when the
    expression names no column."""
    import pandas as pd

    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # nosec B101 # for mypy: parse_expr admits numbers only
        return float(node.value)
    if isinstance(node, ast.Name):
        return pd.to_numeric(df[node.id], errors="coerce").astype("float64")
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)  # nosec B101 # for mypy: parse_expr admits min() and max() only
        values = [evaluate(a, df) for a in node.args]
        columns = pd.DataFrame(
            {i: v if isinstance(v, pd.Series) else float(v) for i, v in enumerate(values)},
            index=df.index,
        )
        return columns.agg(node.func.id, axis=1, skipna=False)
    if isinstance(node, ast.UnaryOp):
        operand = evaluate(node.operand, df)
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.BinOp)  # nosec B101 # for mypy: parse_expr admits nothing else
    left, right = evaluate(node.left, df), evaluate(node.right, df)
    return _OPERATORS[type(node.op)](left, right)
