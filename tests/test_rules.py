"""The decision engine: rule cases from tests/rule_cases/*.yaml, coverage, registry, waivers, presets."""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import re
import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.decide import (
    Conflict,
    InfeasibleSpec,
    Outcome,
    Registry,
    RuleContext,
    RuleError,
    check,
    decide,
    finding,
    load_registry,
    require_feasible,
    rule,
)
from generator.decide.architecture import Architecture
from generator.decide.registry import AREAS, FindingKind, builtin_registry
from generator.decide.table import Row, always
from requirements_spec import presets
from requirements_spec.loader import load_yaml_text
from requirements_spec.validate import LoadedSpec, load_spec, parse_spec

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = Path(__file__).parent / "rule_cases"
SHARED = Path("/work/shared/design")


# ---------------------------------------------------------------- rule cases
def merge(base: Any, fragment: Any) -> Any:
    """Mappings merge, lists and scalars replace, None removes the key."""
    if isinstance(base, dict) and isinstance(fragment, dict):
        out = dict(base)
        for k, v in fragment.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(base.get(k), v)
        return out
    return copy.deepcopy(fragment)


def spec_from(base: str, fragment: dict[str, Any] | None) -> LoadedSpec:
    data = load_yaml_text(presets.text(base), f"{base}.yaml").data
    text = yaml.safe_dump(merge(data, fragment or {}), sort_keys=False)
    return parse_spec(text, "case.yaml")


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            case.setdefault("base", doc.get("base", "reference"))
            out.append((f"{path.stem}:{case['name']}", case))
    return out


CASES = load_cases()


def arch_value(arch: Architecture, dotted: str) -> Any:
    value: Any = arch
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        value = value[int(part[1:-1])] if part.startswith("[") else getattr(value, part)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_rule_case(case: dict[str, Any]) -> None:
    arch = decide(spec_from(case["base"], case.get("spec")))
    got = {d.key: d.choice for d in arch.decisions}
    for key, choice in (case.get("decisions") or {}).items():
        assert got.get(key) == choice, f"{key}: {arch.decision(key).rationale if key in got else 'not decided'}"
    if "findings" in case:
        codes = sorted({f.code for f in arch.findings})
        assert codes == sorted(case["findings"]), [f.message for f in arch.findings]
    for dotted, expected in (case.get("arch") or {}).items():
        assert arch_value(arch, dotted) == expected, dotted
    for key in case.get("not_applicable") or []:
        assert key not in got, f"{key} is decided, but the case says it does not apply"
        skipped = {n.key: n for n in arch.not_applicable}
        assert key in skipped and skipped[key].reason, f"{key} is not listed as not applicable"
    if "waived" in case:
        assert sorted(f.code for f in arch.findings if f.waiver) == sorted(case["waived"])


def test_cases_cover_every_rule_and_finding() -> None:
    reg = builtin_registry()
    decided = {k for _, c in CASES for k in (c.get("decisions") or {})}
    found = {code for _, c in CASES for code in c.get("findings") or []}
    assert sorted(set(reg.rules) - decided) == []
    assert sorted(set(reg.kinds) - found) == []


def _tables() -> list[tuple[Any, str, tuple[Row[Any], ...]]]:
    """(module, name, rows) of every first-match table an area module holds."""
    out = []
    for area in AREAS:
        module = importlib.import_module(f"generator.decide.{area}")
        for name, value in vars(module).items():
            if isinstance(value, tuple) and value and all(isinstance(r, Row) for r in value):
                out.append((module, name, value))
    return out


def test_cases_reach_every_row_of_every_decision_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each row of a first-match table is the first that holds for at least one rule case."""
    tables = _tables()
    assert {name for _, name, _ in tables} >= {"ONLINE_STORE_TABLE", "SERVING_RUNTIME_TABLE"}
    reached: set[tuple[str, int]] = set()

    def recorded(name: str, n: int, row: Row[Any]) -> Row[Any]:
        def then(facts: Any) -> Outcome:
            reached.add((name, n))
            return row.then(facts)

        return replace(row, then=then)

    for module, name, rows in tables:
        monkeypatch.setattr(module, name, tuple(recorded(name, n, r) for n, r in enumerate(rows)))
    for _, case in CASES:
        decide(spec_from(case["base"], case.get("spec")))
    missing = [
        (name, n, rows[n].when) for _, name, rows in tables for n in range(len(rows)) if (name, n) not in reached
    ]
    assert missing == []
    for _, name, rows in tables:
        assert rows[-1].test is always, f"the last row of {name} must hold always"


def test_rule_modules_register_nothing_and_reload() -> None:
    """Registration is explicit: making a rule registers nothing, and a rule module can be reloaded."""
    before = builtin_registry()
    _plugin_rule("not_listed_anywhere")
    for area in AREAS:
        importlib.reload(importlib.import_module(f"generator.decide.{area}"))
    after = builtin_registry()
    assert list(after.rules) == list(before.rules) and list(after.kinds) == list(before.kinds)
    assert "not_listed_anywhere" not in after.rules
    reference = load_spec(ROOT / "requirements_spec/presets/reference.yaml")
    assert decide(reference, registry=after) == decide(reference, registry=before)


def test_probes_are_the_ones_listed_and_the_module_reloads() -> None:
    """The probes of `archgen check` are what PROBES lists: every probe the module makes, once each; making
    one registers nothing, and reloading the module changes neither the list nor the contract.
    """
    from generator.checks import probes
    from generator.decide.contract import rows

    def listed(module: Any) -> list[tuple[str, tuple[str, ...], str]]:
        return [(p.name, p.decisions, p.fn.__qualname__) for p in module.PROBES]

    before, contract = listed(probes), rows()
    made = [obj for obj in vars(probes).values() if isinstance(obj, probes.Probe)]
    assert sorted(p.name for p in made) == sorted(name for name, *_ in before), "a probe PROBES does not list"
    assert len({name for name, *_ in before}) == len(before)
    assert all(p.doc for p in probes.PROBES)
    probes.probe("not_listed_anywhere", "scheduler")(lambda ctx: None)
    reloaded = importlib.reload(probes)
    assert listed(reloaded) == before
    assert "not_listed_anywhere" not in {p.name for p in reloaded.PROBES}
    assert rows() == contract


def test_a_rule_no_list_names_is_refused() -> None:
    """A rule or finding an area module defines but does not list would be silently lost: it is an error."""
    area = types.ModuleType("generator.decide.acme_area")

    def acme(ctx: RuleContext) -> Iterator[Conflict]:
        """Acme's finding."""
        yield from ()

    acme.__module__ = area.__name__
    area.acme = finding("acme.one", "warning", title="Acme")(acme)  # type: ignore[attr-defined]
    area.RULES, area.FINDINGS = (), ()  # type: ignore[attr-defined]
    with pytest.raises(RuleError, match=r"acme_area\.acme is a check no list names"):
        Registry().add_area(area)
    area.FINDINGS = (area.acme,)  # type: ignore[attr-defined]
    reg = Registry()
    reg.add_area(area)
    assert reg.kinds["acme.one"].defined_by == "generator.decide.acme_area.acme"


def test_case_names_are_unique() -> None:
    ids = [i for i, _ in CASES]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------- presets and examples
def _all_specs() -> list[Path]:
    folder = ROOT / "requirements_spec" / "presets"
    out = sorted(folder.glob("*.yaml"))
    out += [p for p in (SHARED / "spec-reference.yaml", SHARED / "spec-realtime-example.yaml") if p.exists()]
    return out


@pytest.mark.parametrize("path", _all_specs(), ids=lambda p: p.name)
def test_every_preset_decides_a_complete_feasible_architecture(path: Path) -> None:
    arch = decide(load_spec(path))
    require_feasible(arch)
    keys = {d.key for d in arch.decisions}
    expected = set(builtin_registry().rules) - {n.key for n in arch.not_applicable}
    assert not keys & {n.key for n in arch.not_applicable}
    if arch.spec.features is None:
        expected -= {"online_store", "offline_store", "registry", "ingestion", "materialization"}
        expected -= {"feature_views", "on_demand_views"}
        assert arch.feature_store is None
    else:
        assert arch.feature_store is not None
    runtime = arch.serving.runtime
    expected -= {k for k, r in (("batch_scoring", "batch_scoring"), ("embedded_bundle", "embedded")) if r != runtime}
    if runtime in ("batch_scoring", "embedded"):  # the model runs in process: no Triton settings, no protocol
        in_process = {"protocol", "triton_backend", "dynamic_batching", "instance_group", "sequence_batching"}
        expected -= in_process | {"pipeline"} | ({"deployment"} if runtime == "embedded" else set())
        assert not keys & in_process
    assert expected <= keys
    assert arch.serving.entrypoint in {m.name for m in arch.serving.models}
    for d in arch.decisions:
        assert d.rationale and d.requirements


def test_reference_spec_decisions() -> None:
    arch = decide(load_spec(ROOT / "requirements_spec/presets/reference.yaml"))
    fs = arch.feature_store
    assert fs is not None
    assert (fs.online_store, fs.offline_store, fs.registry, fs.ingestion) == ("sqlite", "file", "file", "batch")
    assert (arch.training.scheduler, arch.serving.runtime, arch.serving.protocol) == ("crontab", "triton", "rest")
    assert arch.deployment.target == "docker_compose"
    assert arch.findings == []


def test_realtime_example_decisions() -> None:
    path = SHARED / "spec-realtime-example.yaml"
    arch = decide(load_spec(path if path.exists() else ROOT / "requirements_spec/presets/realtime.yaml"))
    fs = arch.feature_store
    assert fs is not None
    assert fs.online_store == "redis" and fs.registry == "sql"
    assert "push" in fs.ingestion and fs.push_sources and fs.on_demand_views == ["amount_vs_habit"]
    assert arch.serving.runtime == "triton" and arch.serving.protocol == "grpc"
    ensemble = [m for m in arch.serving.models if m.kind == "ensemble"]
    assert [m.steps for m in ensemble] == [["fraud_gbm", "fraud_calibrator"]]
    assert arch.training.scheduler == "airflow" and arch.deployment.target == "kubernetes"
    assert arch.privacy.pii_handling == "hash" and fs.hashed_fields == ["card_spend.holder_email"]


def test_decision_requirements_carry_spec_lines() -> None:
    loaded = load_spec(ROOT / "requirements_spec/presets/reference.yaml")
    arch = decide(loaded)
    lines = loaded.text.splitlines()
    req = next(r for r in arch.decision("online_store").requirements if r.path == "serving.latency_p99_ms")
    assert req.value == 50 and "latency_p99_ms" in lines[req.line - 1]


def test_deciding_a_bare_spec_gives_the_same_decisions() -> None:
    loaded = load_spec(ROOT / "requirements_spec/presets/realtime.yaml")
    a, b = decide(loaded), decide(loaded.spec)
    assert [(d.key, d.choice) for d in a.decisions] == [(d.key, d.choice) for d in b.decisions]
    assert all(r.line == 0 for d in b.decisions for r in d.requirements)


# ---------------------------------------------------------------- errors stop generation
def test_require_feasible_raises_spec_error_with_lines() -> None:
    loaded = spec_from(
        "reference",
        {"features": {"services": [{"name": "ranking_v1", "features": ["driver_activity.phone_number"]}]}},
    )
    arch = decide(loaded)
    with pytest.raises(InfeasibleSpec) as exc:
        require_feasible(arch)
    assert exc.value.exit_code == 65
    text = exc.value.render()
    assert "privacy.pii_served_while_drop" in text and "case.yaml:" in text
    diag = exc.value.diagnostics[0]
    assert diag.line > 0 and diag.hint


def test_require_feasible_passes_warnings() -> None:
    arch = decide(spec_from("reference", {"training": {"min_quality": None}}))
    assert [f.code for f in arch.warnings] == ["training.quality_gate_missing"]
    assert require_feasible(arch) is arch


# ---------------------------------------------------------------- registry
def _plugin_rule(key: str, *, overrides: bool = False, choice: str = "postgres") -> Any:
    @rule(key, title="company standard", reads=("existing.warehouse",), overrides=overrides)
    def company_rule(ctx: RuleContext) -> Outcome:
        """Our company stores online features in PostgreSQL."""
        return Outcome(choice, "company standard", [("existing", "warehouse")])

    return company_rule


class _EP:
    """A stand-in for importlib.metadata.EntryPoint (name, value, load)."""

    def __init__(self, name: str, obj: Any) -> None:
        self.name, self.value, self._obj = name, f"acme_rules:{name}", obj

    def load(self) -> Any:
        return self._obj


def _with_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: _EP) -> None:
    def fake(**kwargs: Any) -> list[_EP]:
        assert kwargs == {"group": "archgen.rules"}
        return list(eps)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_two_rules_for_one_key_are_refused() -> None:
    reg = builtin_registry()
    with pytest.raises(RuleError, match="two rules decide 'online_store'"):
        reg.add_rule(_plugin_rule("online_store"))


def test_entry_point_adds_a_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, _EP("gpu_budget", _plugin_rule("gpu_budget", choice="none")))
    reg = load_registry()
    arch = decide(load_spec(ROOT / "requirements_spec/presets/reference.yaml"), registry=reg)
    d = arch.decision("gpu_budget")
    assert d.choice == "none" and d.requirements[0].path == "existing.warehouse"
    assert "entry point gpu_budget" in reg.rules["gpu_budget"].origin


def test_entry_point_overriding_without_saying_so_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, _EP("acme", _plugin_rule("online_store")))
    with pytest.raises(RuleError, match=r"two rules decide 'online_store'.*entry point acme") as exc:
        load_registry()
    assert exc.value.hint is not None and "overrides=True" in exc.value.hint


def test_entry_point_may_override_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, _EP("acme", [_plugin_rule("online_store", overrides=True)]))
    arch = decide(load_spec(ROOT / "requirements_spec/presets/reference.yaml"), registry=load_registry())
    assert arch.decision("online_store").choice == "postgres"
    assert arch.feature_store is not None and arch.feature_store.online_store == "postgres"


def test_override_must_choose_an_allowed_value(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, _EP("acme", _plugin_rule("online_store", overrides=True, choice="cassandra")))
    with pytest.raises(RuleError, match="cassandra"):
        decide(load_spec(ROOT / "requirements_spec/presets/reference.yaml"), registry=load_registry())


def test_override_of_an_unknown_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, _EP("acme", _plugin_rule("no_such_key", overrides=True)))
    with pytest.raises(RuleError, match="no rule decides"):
        load_registry()


def test_entry_point_adds_a_check_and_its_code_is_waivable(monkeypatch: pytest.MonkeyPatch) -> None:
    kind = FindingKind("acme.needs_owner", "warning", "platform owner missing", "Acme wants a platform owner.")

    @check(kind)
    def platform_owner(ctx: RuleContext) -> Any:
        if ctx.spec.project.owners.platform is None:
            yield ctx.finding(kind.code, "no platform owner", [("project", "owners")], "add project.owners.platform")

    _with_entry_points(monkeypatch, _EP("acme", platform_owner))
    reg = load_registry()
    waiver = {"finding": "acme.needs_owner", "justification": "The data engineers run the platform here."}
    arch = decide(spec_from("reference", {"waivers": [waiver]}), registry=reg)
    assert [(f.code, f.waiver is not None) for f in arch.findings] == [("acme.needs_owner", True)]
    assert arch.findings[0].waiver is not None and arch.findings[0].waiver.line > 0


def test_broken_entry_point_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(_EP):
        def load(self) -> Any:
            raise ImportError("No module named 'acme_rules'")

    _with_entry_points(monkeypatch, Broken("acme", None))
    with pytest.raises(RuleError, match="cannot load entry point acme"):
        load_registry()


# ---------------------------------------------------------------- rules documentation
def test_docs_rules_md_is_up_to_date() -> None:
    from generator.views.rules_doc import rules_document

    doc = ROOT / "docs" / "rules.md"
    assert doc.exists(), "run `archgen rules-doc -o docs/rules.md`"
    assert doc.read_text(encoding="utf-8") == rules_document(builtin_registry()), (
        "docs/rules.md is stale: run `archgen rules-doc -o docs/rules.md`"
    )


def test_every_rule_and_finding_is_documented() -> None:
    reg = builtin_registry()
    for r in reg.rules.values():
        assert r.doc and r.title and r.reads, r.key
    for k in reg.kinds.values():
        assert k.doc and k.title, k.code
