"""The generated on-demand feature views run in Feast's python mode and compute their stand-in formulas.

feature_repo/on_demand.py of a spec with an output of every kind (ratios of each numeric dtype, a comparison,
lengths, a join, bytes, the request time; tests/specs/on_demand_kinds.yaml): Feast infers each view's output
types from its function as `feast apply` does and finds the declared ones; each function, rebuilt from its
source as a reader rebuilds it from the registry, gives what the pandas stand-ins gave before (the oracle
below), missing inputs (None online, NaN in a data frame) included, on one row and several; online (lists)
and offline (an Arrow table) Feast gets the same values, of the declared types.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from triton_harness import generate

pytest.importorskip("feast")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

SPEC = Path(__file__).parent / "specs" / "on_demand_kinds.yaml"
ROWS = {  # one value per row; None where the value is missing
    "price": [2.5, None, 0.0, 3.0, -7.25],
    "units_sold": [10, 3, None, None, 4],
    "basket_value": [1.5, 4.0, None, None, -2.0],
    "currency": ["EUR", None, "USD", "GBP", ""],
}
ARROW_TYPES = {
    "Float64": pa.float64(),
    "Float32": pa.float32(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Bool": pa.bool_(),
    "String": pa.string(),
    "Bytes": pa.binary(),
}


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The generated on-demand feature views, by name, as Feast's registry hands them to a reader."""
    from feast.on_demand_feature_view import OnDemandFeatureView

    repo = tmp_path_factory.mktemp("on-demand") / "repo"
    generate(SPEC, repo)
    feature_repo = str(repo / "feature_repo")
    sys.path.insert(0, feature_repo)
    names = ("entities", "sources", "views", "on_demand")
    try:
        module = importlib.import_module("on_demand")
        found = [v for v in vars(module).values() if isinstance(v, OnDemandFeatureView)]
        yield {v.name: v for v in found}
    finally:
        sys.path.remove(feature_repo)
        for name in names:
            sys.modules.pop(name, None)


def oracle(kind: dict[str, Any], frame: Any) -> Any:
    """The former pandas stand-in of one output (templates/feature_repo/on_demand.py.j2 before python mode)."""
    if kind["kind"] in ("ratio", "compare"):
        others = frame[kind["others"]].astype("float64").mean(axis=1).abs() if kind["others"] else 0.0
        numerator = frame[kind["numerator"]].astype("float64")
        if kind["kind"] == "compare":
            return numerator > others
        ratio = numerator / (others + 1.0)
        if kind["dtype"] in ("int32", "int64"):
            return ratio.fillna(0.0).round().astype(kind["dtype"])
        return ratio.astype(kind["dtype"])
    if kind["kind"] == "length":
        return frame[kind["numerator"]].astype(str).str.len().astype(kind["dtype"])
    joined = frame[kind["inputs"]].astype(str).agg("|".join, axis=1)
    return joined.str.encode("utf-8") if kind["kind"] == "bytes" else joined


def _numeric(kind: str, dtype: str, numerator: str, *others: str) -> dict[str, Any]:
    return {"kind": kind, "dtype": dtype, "numerator": numerator, "others": list(others)}


ALL = ["price", "units_sold", "basket_value", "currency"]
KINDS = {  # the generated formula of each output (its comment in on_demand.py), as the oracle reads it
    "every_kind": {
        "ratio64": _numeric("ratio", "float64", "price", "units_sold", "basket_value"),
        "ratio32": _numeric("ratio", "float32", "units_sold", "price", "basket_value"),
        "count32": _numeric("ratio", "int32", "basket_value", "price", "units_sold"),
        "count64": _numeric("ratio", "int64", "price", "units_sold", "basket_value"),
        "above": _numeric("compare", "bool", "units_sold", "price", "basket_value"),
        "joined": {"kind": "join", "inputs": ALL},
        "packed": {"kind": "bytes", "inputs": ALL},
    },
    "text_only": {
        "length64": _numeric("length", "int64", "currency"),
        "length32": _numeric("length", "int32", "currency"),
        "length_f": _numeric("length", "float32", "currency"),
        "nonempty": _numeric("length", "bool", "currency"),
    },
}


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def same(got: Any, want: Any) -> bool:
    """Equal values; a missing value (None, NaN) equals a missing one."""
    if missing(got) or missing(want):
        return missing(got) and missing(want)
    if isinstance(want, float):
        return math.isclose(float(got), want, rel_tol=1e-6)
    return bool(got == want)


def frame_of(rows: dict[str, list[Any]]) -> Any:
    frame = pd.DataFrame({k: v for k, v in rows.items() if k != "units_sold"})
    frame["units_sold"] = pd.array(rows["units_sold"], dtype="Int64")  # int64 in the store, missing allowed
    return frame


def test_every_view_is_in_python_mode_and_rebuilds_from_its_own_source(views: dict[str, Any]) -> None:
    from feast.on_demand_feature_view import OnDemandFeatureView
    from feast.transformation.udf_rehydrate import rehydrate_udf_from_source

    assert set(views) == {"basket_fit", "every_kind", "text_only"}
    for name, view in views.items():
        assert view.mode == "python", name
        # a reader (the serving client, the feature server) rebuilds the function from its source text alone
        udf = rehydrate_udf_from_source(view.feature_transformation.udf_string, preferred_name=view.name)
        assert udf is not None, f"{name}: the function does not run from its own source"
        again = OnDemandFeatureView.from_proto(view.to_proto())
        assert again.mode == "python" and again.feature_transformation.udf(dict(ROWS)).keys() >= {
            f.name for f in view.features
        }


def test_feast_infers_the_declared_output_types(views: dict[str, Any]) -> None:
    """What `feast apply` checks: the function's outputs, on Feast's sample inputs, have the declared types."""
    for name, view in views.items():
        declared = {f.name: f.dtype for f in view.features}
        view.infer_features()  # raises SpecifiedFeaturesNotPresentError on a type the schema does not declare
        assert {f.name: f.dtype for f in view.features} == declared, name


@pytest.mark.parametrize("rows", [1, len(ROWS["price"])], ids=["one-row", "several-rows"])
def test_the_stand_ins_compute_what_the_pandas_ones_did(views: dict[str, Any], rows: int) -> None:
    from feast.on_demand_feature_view import OnDemandFeatureView

    inputs = {k: v[:rows] for k, v in ROWS.items()}
    frame = frame_of(inputs)
    before = datetime.now(UTC)
    for view_name, outputs in KINDS.items():
        view = OnDemandFeatureView.from_proto(views[view_name].to_proto())
        got = view.feature_transformation.udf({k: list(v) for k, v in inputs.items()})
        for output, kind in outputs.items():
            want = oracle(kind, frame).tolist()
            values = got[output]
            assert len(values) == rows, (view_name, output)
            for i, (g, w) in enumerate(zip(values, want, strict=True)):
                if kind["kind"] in ("join", "bytes") and any(inputs[k][i] is None for k in kind["inputs"]):
                    continue  # a missing value reads "None" now, "nan" or "<NA>" in pandas: a stand-in's detail
                assert same(g, w), (view_name, output, i, g, w)
        stamps = got.get("asked_at", [])
        assert all(before <= t <= datetime.now(UTC) for t in stamps), stamps


def test_online_and_offline_feast_read_the_declared_types(views: dict[str, Any]) -> None:
    """Online Feast turns the lists into values of the declared type; offline, an Arrow table of that type."""
    from feast.type_map import python_values_to_proto_values

    for view_name in KINDS:
        view = views[view_name]
        online = view.transform_dict({k: list(v) for k, v in ROWS.items()})
        table = view.transform_arrow(pa.Table.from_pydict(ROWS))
        for field in view.features:
            protos = python_values_to_proto_values(online[field.name], field.dtype.to_value_type())
            assert len(protos) == len(ROWS["price"]), field.name
            declared = str(field.dtype)
            if declared in ARROW_TYPES:
                assert table.schema.field(field.name).type == ARROW_TYPES[declared], (field.name, table.schema)
            for proto, value in zip(protos, online[field.name], strict=True):
                assert proto.WhichOneof("val") is None if value is None else proto.WhichOneof("val"), field.name
