"""The ``transform`` kind: features computed by a function of the use case's own
``transforms.py``, from the source rows it could have known."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from typing_extensions import override

from airloop.core.errors import PermanentError
from airloop.usecase.base import Duration, Spec
from airloop.usecase.views.base import FeatureDtype, UseCaseContext, ViewInputs, snapshot_rows
from airloop.usecase.views.history import FromSourceHistory

if TYPE_CHECKING:
    import pandas as pd


TRANSFORMS_FILE = "transforms.py"


class TransformError(PermanentError, ValueError):
    """A use case's own transform function broke its contract; the message names the file."""


class TransformFeature(Spec):
    """A feature a transform function returns, and its type."""

    name: str
    dtype: FeatureDtype = "float"


def _transforms_path(usecase: UseCaseContext) -> Path:
    if usecase.folder is None:
        raise ValueError(
            f"a transform view needs its use case loaded from a file (load_usecase), to find"
            f" {TRANSFORMS_FILE} beside it"
        )
    return usecase.folder / TRANSFORMS_FILE


def check_transform_function(path: Path, function: str) -> None:
    """Refuse a function that ``path`` does not define at its top level, taking
    ``(history, as_of)``; read with ``ast``, so loading a use case runs none of its code."""
    if not path.is_file():
        raise ValueError(f"{path} not found: it must define {function}(history, as_of)")
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise ValueError(f"{path}: not valid Python: {exc}") from None
    defined = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if function not in defined:
        raise ValueError(
            f"{path} defines no top-level function {function!r} (it defines:"
            f" {sorted(defined) or 'none'})"
        )
    args = defined[function].args
    if len(args.posonlyargs) + len(args.args) < 2 and args.vararg is None:
        raise ValueError(f"{path}: {function} must take two arguments: (history, as_of)")


@cache
def _load_module(path: Path) -> ModuleType:
    """The use case's transforms module, imported from its file once per process."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"airloop_usecase_transforms_{digest}", path)
    if spec is None or spec.loader is None:
        raise TransformError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_transform(path: Path, function: str) -> Callable[..., Any]:
    """A function of the use case's ``transforms.py``."""
    fn = getattr(_load_module(path.resolve()), function, None)
    if not callable(fn):
        raise TransformError(f"{path} has no function {function!r}")
    return fn


class TransformView(FromSourceHistory):
    """Features computed by a function of the use case's own ``transforms.py``.

    ``function(history, as_of)`` receives the source's rows known at ``as_of`` (all its
    columns; time within ``lookback`` before it) and returns one row per entity: the entity key
    and the declared features. The engine stamps ``event_timestamp`` and refuses extra,
    missing or mistyped columns. The function never sees a row it could not have known.
    """

    kind: Literal["transform"]
    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    lookback: Duration
    features: list[TransformFeature] = Field(min_length=1)

    @override
    def _reach(self) -> Any:
        return self.lookback

    @override
    def _spans(self) -> dict[str, list[Any]]:
        return {"lookback": [self.lookback]}

    @override
    def _value_columns(self, usecase: UseCaseContext) -> list[str]:
        return self._source(usecase).output_columns()  # the function may read any of them

    @override
    def feature_dtypes(self, usecase: UseCaseContext) -> dict[str, FeatureDtype]:
        return {f.name: f.dtype for f in self.features}

    @override
    def check(self, usecase: UseCaseContext) -> None:
        super().check(usecase)
        key = usecase.entity(self.entity).join_key
        if key in self.feature_dtypes(usecase):
            raise ValueError(f"feature view {self.name!r}: a feature is named {key!r}, the key")
        try:
            check_transform_function(_transforms_path(usecase), self.function)
        except ValueError as exc:
            raise ValueError(f"feature view {self.name!r}: {exc}") from None

    @override
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
        as_of = inputs.start
        history = self.known_rows(usecase, inputs, as_of - self.lookback)
        if history is None:
            return None
        path = _transforms_path(usecase)
        result = load_transform(path, self.function)(history, as_of)
        return self._checked(usecase, path, result, as_of)

    def _checked(
        self, usecase: UseCaseContext, path: Path, result: Any, as_of: pd.Timestamp
    ) -> pd.DataFrame | None:
        """The function's rows, typed and stamped; a broken contract is refused, named."""
        import pandas as pd

        where = f"{path}: {self.function}() for feature view {self.name!r}"
        if not isinstance(result, pd.DataFrame):
            raise TransformError(f"{where} returned {type(result).__name__}, not a DataFrame")
        key = usecase.entity(self.entity).join_key
        dtypes = self.feature_dtypes(usecase)
        wanted = [key, *dtypes]
        extra = [str(c) for c in result.columns if c not in wanted]
        missing = [c for c in wanted if c not in result.columns]
        if extra or missing:
            raise TransformError(
                f"{where} must return exactly the columns {wanted}:"
                + (
                    f" it returned undeclared {extra} (declare them under features, or drop"
                    " them; the engine adds event_timestamp itself)"
                    if extra
                    else ""
                )
                + (f" it lacks {missing}" if missing else "")
            )
        rows = result[result[key].notna()]
        if rows[key].duplicated().any():
            twice = sorted(map(str, rows.loc[rows[key].duplicated(), key].unique()))[:5]
            raise TransformError(f"{where} returned more than one row for {key} {twice}")
        if rows.empty:
            return None
        out = pd.DataFrame({key: rows[key].astype(object)})
        for name, dtype in dtypes.items():
            out[name] = _typed_feature(rows[name], dtype, f"{where}: feature {name!r}")
        out = out.set_index(key).sort_index()
        return snapshot_rows(usecase, self.entity, out, as_of, list(dtypes))


def _typed_feature(values: pd.Series, dtype: FeatureDtype, where: str) -> pd.Series:
    """A transform's column as its declared type, or an error saying what came back instead."""
    import pandas as pd

    api = pd.api.types
    present = values.dropna()
    numeric = api.is_numeric_dtype(values) and not api.is_bool_dtype(values)
    if dtype == "float" and numeric:
        return values.astype("float64")
    if dtype == "int" and numeric and (present == present.round()).all():
        return values.astype("Int64")
    if dtype == "string" and (
        api.is_string_dtype(values) or present.map(lambda v: isinstance(v, str)).all()
    ):
        return values.astype(object).where(values.notna(), None)
    raise TransformError(f"{where} is declared {dtype} but came back as {values.dtype}")
