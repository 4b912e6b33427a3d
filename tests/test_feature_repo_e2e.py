"""End to end: the generated Feast feature repository runs for real.

For every preset with features, on the embedded stores (SQLite online, file offline, file registry):
sample data -> `feast apply` -> `scripts/materialize.py` -> online features through each feature
service equal the latest sample row per entity -> historical features are point-in-time correct.
A batch-scoring preset has no online store and materializes nothing: only its offline path runs.
The same against the real Redis and the real PostgreSQL (online, offline and SQL registry), and the
PII cases: a `drop` field is unreachable through any feature service, a `hash` field is served as its
salted hash, an `encrypt` field as a ciphertext only the roles granted read_pii decrypt. The Feast work
runs in subprocesses (tests/test_feature_repo_runner.py), one per store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from triton_harness import postgres_env, scratch_database

from generator.decide import decide
from generator.decide.architecture import Architecture
from generator.plan import feature_repo as fr_component
from generator.plan.plan import build_plan
from generator.render.render import render_plan
from requirements_spec.types import duration_seconds
from requirements_spec.validate import parse_spec

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "requirements_spec" / "presets"
PYTHON = sys.executable
RUNNER = Path(__file__).with_name("test_feature_repo_runner.py")
SALT = "test-salt-not-a-secret"
KEY = base64.urlsafe_b64encode(b"test-key-not-a-secret-32-bytes!!").decode()  # a Fernet key
REQUEST_VALUES = {"float64": 25.0, "float32": 25.0, "int64": 3, "int32": 3, "string": "EUR", "bool": True}

pytestmark = pytest.mark.slow
UNGRANTED = "not_a_granted_role"
AUTHZ_ACTIONS = ["READ_ONLINE", "READ_OFFLINE", "WRITE_ONLINE", "DESCRIBE"]


# ------------------------------------------------------------------ building variants
def preset_data(name: str) -> dict[str, Any]:
    return yaml.safe_load((PRESETS / f"{name}.yaml").read_text())


def presets_with_features() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml") if preset_data(p.stem).get("features"))


def arch_of(data: dict[str, Any], **stores: str) -> Architecture:
    arch = decide(parse_spec(yaml.safe_dump(data, sort_keys=False), "spec.yaml"))
    assert arch.feature_store is not None
    if stores:
        fs = arch.feature_store.model_copy(update=stores)
        arch = arch.model_copy(update={"feature_store": fs})
    return arch


def embedded(arch: Architecture) -> Architecture:
    assert arch.feature_store is not None
    online = "sqlite" if arch.feature_store.online_store is not None else None  # batch scoring: nothing online
    fs = arch.feature_store.model_copy(update={"online_store": online, "offline_store": "file", "registry": "file"})
    return arch.model_copy(update={"feature_store": fs})


def write_repo(arch: Architecture, root: Path) -> Path:
    """Only the feature repo, its scripts, the typed description of the system's data they read, and the serving
    client and the REST runtime's predictor (their online reads are compared with Feast's get_online_features)."""
    files = render_plan(build_plan(arch), arch)
    for path, data in files.items():
        if path.startswith(("feature_repo/", "scripts/generate_sample_data.py", "scripts/materialize.py")) or (
            path
            in (
                "scripts/protect_pii.py",
                "serving/__init__.py",
                "serving/system_data.py",
                "serving/client.py",
                "serving/predictor.py",
            )
        ):
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return root


def generate_data(root: Path, now: datetime, *extra: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [PYTHON, str(root / "scripts" / "generate_sample_data.py"), "--now", now.isoformat(), *extra],
        check=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


# ------------------------------------------------------------------ expectations from the sample data
class Variant:
    """One generated repository, its sample data and what the runner should query."""

    def __init__(self, name: str, arch: Architecture, root: Path, now: datetime, env: dict[str, str]) -> None:
        self.name, self.arch, self.root, self.now, self.env = name, arch, root, now, env
        self.dump_online = False
        self.model = fr_component.build_model(arch)
        self.spec = arch.spec

    def frame(self, source: str) -> Any:
        path = next(s["path"] for s in self.model["batch_sources"] if s["name"] == source)
        return pd.read_parquet(self.root / "feature_repo" / path)

    def batch_of_view(self, view: str) -> str:
        v = self.spec.view(view)
        assert v is not None
        src = self.spec.source(v.source)
        return getattr(src, "batch_source", v.source)

    def timestamp_of(self, source: str) -> str:
        return next(s["timestamp_field"] for s in self.model["batch_sources"] if s["name"] == source)

    def join_key(self, entity: str) -> str:
        e = self.spec.entity(entity)
        assert e is not None
        return e.join_key

    def latest(self, view: str) -> Any:
        """The latest row per entity the online store must serve (within ttl, not after `now`)."""
        v = self.spec.view(view)
        assert v is not None
        src = self.batch_of_view(view)
        ts = self.timestamp_of(src)
        df = self.frame(src)
        df = df[(df[ts] <= self.now) & (df[ts] > self.now - timedelta(seconds=duration_seconds(v.ttl)))]
        keys = [self.join_key(e) for e in v.entities]
        return df.sort_values(ts).groupby(keys).tail(1).set_index(keys)

    def service_views(self, service: str) -> list[str]:
        out = []
        for ref in fr_component.served_features(self.arch, service):
            view = ref.partition(".")[0]
            if self.spec.view(view) is not None:
                out.append(view)
            else:
                out += [
                    r.partition(".")[0] for o in self.model["odfvs"] if o["name"] == view for r in self._inputs(view)
                ]
        return [v for v in dict.fromkeys(out) if self.spec.view(v) is not None]

    def _inputs(self, odfv: str) -> list[str]:
        assert self.spec.features is not None
        return next(o.inputs for o in self.spec.features.on_demand if o.name == odfv)

    def request_fields(self, service: str) -> dict[str, Any]:
        out = {}
        for ref in fr_component.served_features(self.arch, service):
            for inp in self._inputs(ref.partition(".")[0]) if self._is_odfv(ref) else []:
                src = self.spec.source(inp.partition(".")[0])
                for f in getattr(src, "fields", []):  # Feast asks for every field of a request source
                    out[f.name] = REQUEST_VALUES[f.dtype]
        return out

    def _is_odfv(self, ref: str) -> bool:
        return any(o["name"] == ref.partition(".")[0] for o in self.model["odfvs"])

    def entity_rows(self, service: str) -> list[dict[str, Any]]:
        """Three known ids per entity, and one unknown row."""
        per_entity: dict[str, list[Any]] = {}
        for view in self.service_views(service):
            v = self.spec.view(view)
            assert v is not None
            latest = self.latest(view)
            key = self.join_key(v.entities[0])
            per_entity.setdefault(key, sorted(latest.index.get_level_values(0).unique())[:3])
        rows = [{k: ids[i] for k, ids in per_entity.items()} for i in range(3)]
        rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows]
        unknown = {
            k: (999_999 if isinstance(ids[0], int | float) or hasattr(ids[0], "item") else "nobody")
            for k, ids in per_entity.items()
        }
        req = self.request_fields(service)
        return [{**r, **req} for r in [*rows, unknown]]

    @property
    def online(self) -> bool:
        """Whether anything is read online (batch scoring reads the offline store only)."""
        return self.arch.feature_store is not None and self.arch.feature_store.online_store is not None

    def request(self) -> dict[str, Any]:
        assert self.spec.features is not None
        online = {s.name: self.entity_rows(s.name) for s in self.spec.features.services} if self.online else {}
        direct = []
        fs = self.arch.feature_store
        assert fs is not None
        for ref in [*fs.dropped_fields, *fs.hashed_fields, *fs.encrypted_fields] if self.online else []:
            view, _, field = ref.partition(".")
            v = self.spec.view(view)
            assert v is not None
            key = self.join_key(v.entities[0])
            ids = sorted(self.latest(view).index.get_level_values(0).unique())[:2]
            rows = [{key: i.item() if hasattr(i, "item") else i} for i in ids]
            direct.append({"features": [f"{view}:{field}"], "entity_rows": rows})
            if ref in [*fs.hashed_fields, *fs.encrypted_fields]:
                hidden = fr_component.protected_ref(ref, fs).replace(".", ":")
                direct.append({"features": [hidden], "entity_rows": rows})
        historical = {}
        for s in self.spec.features.services:
            entity_df = self.entity_df(s.name)
            path = self.root / f"entity_df_{s.name}.parquet"
            entity_df.to_parquet(path, index=False)
            historical[s.name] = {"entity_df": str(path), "out": str(self.root / f"historical_{s.name}.parquet")}
        return {
            "root": str(self.root),
            "end": self.now.isoformat(),
            "env": self.env,
            "online": online,
            "direct": direct,
            "historical": historical,
            "teardown": self.arch.feature_store.online_store == "redis",  # type: ignore[union-attr]
            "dump_online": self.dump_online,
            "authz": [[role, action] for role in [*self.roles(), UNGRANTED] for action in AUTHZ_ACTIONS],
        }

    def roles(self) -> list[str]:
        return [a.role for a in self.spec.privacy.access]

    def entity_df(self, service: str) -> Any:
        """Label rows when the label source carries the service's keys, else feature rows shifted in time."""
        keys = list(
            dict.fromkeys(self.join_key(e) for v in self.service_views(service) for e in self.spec.view(v).entities)
        )  # type: ignore[union-attr]
        label = self.spec.training.label
        req = self.request_fields(service)
        base = None
        if label is not None:
            src = self.frame(label.source)
            if set(keys) <= set(src.columns):
                base = src.rename(columns={self.timestamp_of(label.source): "event_timestamp"})
        if base is None:
            view = self.service_views(service)[0]
            src_name = self.batch_of_view(view)
            base = self.frame(src_name).rename(columns={self.timestamp_of(src_name): "event_timestamp"})
            base["event_timestamp"] = base["event_timestamp"] + timedelta(minutes=30)
        df = base[[*keys, "event_timestamp"]].head(300).copy()
        for name, value in req.items():
            df[name] = value
        df["row_id"] = range(len(df))
        return df


def run_variants(variants: list[Variant], tmp: Path) -> list[dict[str, Any]]:
    requests = tmp / "requests.json"
    results = tmp / "results.json"
    requests.write_text(json.dumps([v.request() for v in variants], default=str))
    proc = subprocess.run(
        [PYTHON, str(RUNNER), str(requests), str(results)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return json.loads(results.read_text())


# ------------------------------------------------------------------ the checks
def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(b, float) or isinstance(a, float):
        return abs(float(a) - float(b)) <= 1e-5 * max(1.0, abs(float(b)))
    return a == b


def plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


def check_online(variant: Variant, result: dict[str, Any]) -> None:
    req = variant.request()
    for service, rows in req["online"].items():
        got = result["online"][service]
        for ref in fr_component.served_features(variant.arch, service):
            view, _, field = ref.partition(".")
            values = decrypted(variant, field, got[field])
            for i, row in enumerate(rows):
                expected = expected_value(variant, view, field, row)
                assert close(values[i], expected), (variant.name, service, ref, row, values[i], expected)


def encrypted(variant: Variant, field: str) -> bool:
    """A field served as the ciphertext of an encrypted personal field."""
    fs = variant.arch.feature_store
    assert fs is not None
    return field.endswith(fr_component.ENCRYPT_SUFFIX) and any(
        r.partition(".")[2] + fr_component.ENCRYPT_SUFFIX == field for r in fs.encrypted_fields
    )


def protect_module(variant: Variant) -> Any:
    """The generated scripts/protect_pii.py of a variant, imported."""
    spec = importlib.util.spec_from_file_location(f"protect_{variant.name}", variant.root / "scripts/protect_pii.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decrypted(variant: Variant, field: str, values: list[Any]) -> list[Any]:
    """Ciphertexts decrypted by the generated reveal() for a role granted read_pii; other values as they are."""
    if not encrypted(variant, field):
        return values
    protect = protect_module(variant)
    assert all(v is None or (isinstance(v, str) and v.startswith("gAAAAA")) for v in values), values[:3]
    return list(protect.reveal(list(values), protect.DECRYPT_ROLES[0], KEY.encode()))


def expected_value(variant: Variant, view: str, field: str, row: dict[str, Any]) -> Any:
    spec = variant.spec
    if encrypted(variant, field):  # compared once decrypted: the raw value
        return expected_value(variant, view, field.removesuffix(fr_component.ENCRYPT_SUFFIX), row)
    raw_ref = f"{view}.{field.removesuffix(fr_component.HASH_SUFFIX)}"
    if field.endswith(fr_component.HASH_SUFFIX) and raw_ref in variant.arch.feature_store.hashed_fields:  # type: ignore[union-attr]
        raw = expected_value(variant, view, raw_ref.partition(".")[2], row)
        return None if raw is None else hmac.new(SALT.encode(), str(raw).encode(), hashlib.sha256).hexdigest()
    if spec.view(view) is not None:
        v = spec.view(view)
        assert v is not None
        key = row[variant.join_key(v.entities[0])]
        latest = variant.latest(view)
        return plain(latest.loc[key, field]) if key in latest.index else None
    odfv = next(o for o in variant.model["odfvs"] if o["name"] == view)
    out = next(f for f in odfv["outputs"] if f["name"] == field)
    assert out["kind"] == "ratio", "the presets' on-demand outputs are numeric ratios"
    inputs: dict[str, Any] = {}
    for ref in variant._inputs(view):
        src, _, fld = ref.partition(".")
        inputs[fld] = expected_value(variant, src, fld, row) if spec.view(src) is not None else row[fld]
    if inputs[out["numerator"]] is None:
        return None
    others = [float(inputs[o]) for o in out["others"] if inputs[o] is not None]
    mean = abs(sum(others) / len(others)) if others else 0.0
    return float(inputs[out["numerator"]]) / (mean + 1.0)


def check_historical(variant: Variant, result: dict[str, Any]) -> None:
    for service, path in result["historical"].items():
        got = pd.read_parquet(path).set_index("row_id").sort_index()
        entity_df = pd.read_parquet(variant.root / f"entity_df_{service}.parquet").set_index("row_id")
        assert len(got) == len(entity_df), (variant.name, service)
        for ref in fr_component.served_features(variant.arch, service):
            view, _, field = ref.partition(".")
            v = variant.spec.view(view)
            if v is None:
                assert got[field].notna().mean() > 0.9, (variant.name, ref)
                continue
            src = variant.batch_of_view(view)
            ts = variant.timestamp_of(src)
            key = variant.join_key(v.entities[0])
            raw_field = field.removesuffix(fr_component.ENCRYPT_SUFFIX) if encrypted(variant, field) else field
            feats = hashed_frame(variant, view, variant.frame(src))[[key, ts, raw_field]]
            feats = feats.rename(columns={raw_field: field})
            feats = feats.rename(columns={ts: "event_timestamp"})
            left = entity_df.reset_index()[["row_id", key, "event_timestamp"]].sort_values("event_timestamp")
            feats = feats.sort_values("event_timestamp")
            feats["event_timestamp"] = feats["event_timestamp"].astype(left["event_timestamp"].dtype)
            want = pd.merge_asof(
                left, feats, on="event_timestamp", by=key, tolerance=pd.Timedelta(seconds=duration_seconds(v.ttl))
            ).set_index("row_id")
            assert got[field].notna().mean() > 0.9, (variant.name, ref, "mostly empty")
            sample = list(got.index)[:: max(1, len(got) // 60)]
            plain_values = dict(
                zip(sample, decrypted(variant, field, [plain_or_none(got.loc[i, field]) for i in sample]), strict=True)
            )
            for row_id in sample:
                w, g = want.loc[row_id, field], plain_values[row_id]
                w = None if pd.isna(w) else plain(w)
                g = None if pd.isna(g) else plain(g)
                assert close(g, w), (variant.name, service, ref, row_id, g, w)


def plain_or_none(value: Any) -> Any:
    return None if pd.isna(value) else plain(value)


def hashed_frame(variant: Variant, view: str, frame: Any) -> Any:
    """The raw sample frame with each hashed personal field of `view` as its expected hash column."""
    frame = frame.copy()
    for ref in variant.arch.feature_store.hashed_fields:  # type: ignore[union-attr]
        v, _, field = ref.partition(".")
        if v == view and field in frame.columns:
            frame[field + fr_component.HASH_SUFFIX] = [
                None if r is None else hmac.new(SALT.encode(), str(r).encode(), hashlib.sha256).hexdigest()
                for r in frame[field].tolist()
            ]
    return frame


def raw_pii_values(variant: Variant) -> dict[str, list[str]]:
    """Every raw value of each hashed or encrypted personal field in the sample data (the company's source)."""
    out: dict[str, list[str]] = {}
    fs = variant.arch.feature_store
    assert fs is not None
    for ref in [*fs.hashed_fields, *fs.encrypted_fields]:
        view, _, field = ref.partition(".")
        frame = variant.frame(variant.batch_of_view(view))
        out[ref] = sorted({str(v) for v in frame[field].dropna().tolist()})
        assert out[ref] and all(len(v) >= 6 for v in out[ref]), (ref, out[ref][:5])
    return out


def assert_no_raw_pii(variant: Variant, cells: list[bytes], where: str) -> None:
    """No raw personal value in any cell, and the hashes are there (the scan saw the data)."""
    blob = b"\x00".join(cells)
    fs = variant.arch.feature_store
    assert fs is not None
    for ref, raws in raw_pii_values(variant).items():
        leaked = [r for r in raws if r.encode() in blob]
        assert not leaked, f"{where}: raw values of {ref} stored: {leaked[:3]}"
        if ref in fs.encrypted_fields:  # Fernet tokens start with the version byte 0x80: "gAAAAA" in base64
            tokens = re.findall(rb"gAAAAA[A-Za-z0-9_=-]{40,}", blob)
            assert tokens, f"{where}: no ciphertext of {ref} found: the scan saw no data"
            protect = protect_module(variant)
            plain_values = protect.reveal([t.decode() for t in tokens[:20]], protect.DECRYPT_ROLES[0], KEY.encode())
            assert set(plain_values) <= set(raws), f"{where}: ciphertexts of {ref} decrypt to unknown values"
            continue
        digests = [hmac.new(SALT.encode(), r.encode(), hashlib.sha256).hexdigest().encode() for r in raws]
        assert any(d in blob for d in digests), f"{where}: no hash of {ref} found: the scan saw no data"


def check_training_set(variant: Variant, result: dict[str, Any]) -> None:
    """The training sets (historical features) hold no raw personal value and no dropped column."""
    fs = variant.arch.feature_store
    assert fs is not None
    for service, path in result["historical"].items():
        got = pd.read_parquet(path)
        for ref in fs.dropped_fields:
            assert ref.partition(".")[2] not in got.columns, (variant.name, service, ref)
        for ref in [*fs.hashed_fields, *fs.encrypted_fields]:
            assert ref.partition(".")[2] not in got.columns, (variant.name, service, ref)
        suffixes = (fr_component.HASH_SUFFIX, fr_component.ENCRYPT_SUFFIX)
        if (fs.hashed_fields or fs.encrypted_fields) and any(c.endswith(suffixes) for c in got.columns):
            cells = [str(v).encode() for c in got.columns for v in got[c].tolist()]
            assert_no_raw_pii(variant, cells, f"training set {service}")


def check_pii(variant: Variant, result: dict[str, Any]) -> None:
    fs = variant.arch.feature_store
    assert fs is not None
    served = {(p, f) for s in result["registry"]["services"].values() for p, fields in s for f in fields}
    for ref in [*fs.dropped_fields, *fs.hashed_fields, *fs.encrypted_fields]:
        view, _, field = ref.partition(".")
        assert all(f != field for _, f in served), f"{ref} is reachable through a feature service"
    for ref in fs.dropped_fields:
        view, _, field = ref.partition(".")
        assert field not in result["registry"]["views"][view]
        if not variant.online:  # nothing to read online: the training set check covers the offline path
            continue
        read = next(d for d in result["direct"] if d["features"] == [f"{view}:{field}"])
        assert "error" in read and field in read["error"], read
    for ref in fs.hashed_fields if variant.online else []:
        hashed = fr_component.hashed_ref(ref).replace(".", ":")
        read = next(d for d in result["direct"] if d["features"] == [hashed])
        values = read["result"][hashed.partition(":")[2]]
        view, _, field = ref.partition(".")
        raws = [
            expected_value(variant, view, field, row)
            for row in next(d["entity_rows"] for d in variant.request()["direct"] if d["features"] == [hashed])
        ]
        assert all(isinstance(v, str) and len(v) == 64 for v in values), values
        assert values != raws and all(r not in values for r in raws)
        assert values == [hmac.new(SALT.encode(), str(r).encode(), hashlib.sha256).hexdigest() for r in raws]
    for ref in fs.encrypted_fields:
        hidden = fr_component.encrypted_ref(ref).replace(".", ":")
        read = next(d for d in result["direct"] if d["features"] == [hidden])
        tokens = read["result"][hidden.partition(":")[2]]
        view, _, field = ref.partition(".")
        rows = next(d["entity_rows"] for d in variant.request()["direct"] if d["features"] == [hidden])
        raws = [expected_value(variant, view, field, row) for row in rows]
        assert all(isinstance(t, str) and t.startswith("gAAAAA") for t in tokens), tokens
        assert all(str(r) not in t for r, t in zip(raws, tokens, strict=True))
        protect = protect_module(variant)
        assert protect.DECRYPT_ROLES, "no role may decrypt: the variant must grant read_pii"
        for role in protect.DECRYPT_ROLES:  # the roles granted read_pii get the values back
            assert protect.reveal(tokens, role, KEY.encode()) == [str(r) for r in raws]
        for role in [*(r for r in variant.roles() if r not in protect.DECRYPT_ROLES), UNGRANTED]:
            with pytest.raises(PermissionError, match="may not decrypt"):
                protect.reveal(tokens, role, KEY.encode())


def check_access(variant: Variant, result: dict[str, Any]) -> None:
    """Feast's permission check refuses every role the spec did not grant an action on a feature view."""
    access = {a.role: {x for c in a.can for x in fr_component.ACTIONS[c]} for a in variant.spec.privacy.access}
    if not access:  # no roles declared: Feast grants every authenticated user (nothing generated to check)
        return
    assert result["authz"], "no permission check ran"
    for key, outcome in result["authz"].items():
        _view, role, action = key.split("|")
        granted = action in access.get(role, set())
        assert (outcome == "allowed") == granted, (variant.name, key, outcome)
        if not granted:
            assert "Permission" in outcome, (key, outcome)
    assert any(k.split("|")[1] == UNGRANTED for k in result["authz"])


def check_all(variant: Variant, result: dict[str, Any]) -> None:
    spec = variant.spec
    assert spec.features is not None
    assert set(result["registry"]["views"]) == {v.name for v in spec.features.views}
    assert set(result["registry"]["services"]) == {s.name for s in spec.features.services}
    assert result["registry"]["permissions"] == sorted(a.role for a in spec.privacy.access)
    check_online(variant, result)
    check_historical(variant, result)
    check_pii(variant, result)
    check_training_set(variant, result)
    check_access(variant, result)
    check_client_reads(variant, result)


def check_client_reads(variant: Variant, result: dict[str, Any]) -> None:
    """The generated serving path's own online reads (OnlineReads of serving/client.py, or of the REST runtime's
    serving/predictor.py) give what get_online_features gives, value for value, for every entity of the request
    (an unknown and a repeated one among them), asked all at once and one row at a time; they answer themselves
    for every service without on-demand views, and leave the others to get_online_features; an unknown entity
    is the client's MissingFeatures error."""
    reads = result.get("client_reads")
    if not reads:  # no online serving path (batch scoring, embedded)
        return
    *compared, missing = reads
    assert missing["missing"] == "MissingFeatures", (variant.name, missing)
    assert compared, variant.name
    for read in compared:
        fast, feast = read["fast"], read["feast"]
        if read["on_demand"]:
            assert fast is None, (variant.name, read["service"], "on-demand views are Feast's to compute")
            continue
        assert fast is not None, (variant.name, read["service"], "the client's own read did not answer")
        assert fast == {name: feast[name] for name in fast}, (variant.name, read["service"], fast, feast)
        assert set(feast) - set(fast) <= {e.join_key for e in variant.spec.entities}
        assert any(v is None for values in fast.values() for v in values), "the unknown entity reads as None"


# ------------------------------------------------------------------ fixtures
NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def make_variant(
    name: str, arch: Architecture, tmp: Path, *data_args: str, env: dict[str, str] | None = None
) -> Variant:
    root = write_repo(arch, tmp / name)
    env = {"PII_HASH_SALT": SALT, "PII_ENCRYPTION_KEY": KEY, **(env or {})}
    generate_data(root, NOW, "--entities", "20", "--labels", "300", *data_args, env=env)
    return Variant(name, arch, root, NOW, env)


@pytest.fixture(scope="module")
def embedded_runs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Variant, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("fr_embedded")
    variants = [make_variant(p, embedded(arch_of(preset_data(p))), tmp) for p in presets_with_features()]
    # hash and encrypt: the reference with that pii_handling and the personal field asked for by the service
    for handling in ("hash", "encrypt"):
        data = pii_data(handling)
        variants.append(make_variant(f"reference_{handling}", embedded(arch_of(data)), tmp))
    return list(zip(variants, run_variants(variants, tmp), strict=True))


def pii_data(handling: str) -> dict[str, Any]:
    """The reference spec serving its personal field with this handling; encrypt grants read_pii to one role."""
    data = preset_data("reference")
    data["privacy"]["pii_handling"] = handling
    data["features"]["services"][0]["features"].append("driver_activity.phone_number")
    if handling == "encrypt":
        data["privacy"]["access"] = [
            {"role": "ranking_service", "can": ["online_read", "offline_read"]},
            {"role": "support_agent", "can": ["online_read", "read_pii"]},
        ]
    return data


def test_every_preset_with_features_is_covered(embedded_runs: list[tuple[Variant, dict[str, Any]]]) -> None:
    assert {"reference", "realtime"} <= {v.name for v, _ in embedded_runs}
    with_reads = {v.name for v, r in embedded_runs if r.get("client_reads")}
    assert {"reference", "realtime", "starter", "edge_airgapped"} <= with_reads  # Triton clients, REST predictors


@pytest.mark.parametrize("name", [*presets_with_features(), "reference_hash", "reference_encrypt"])
def test_embedded_round_trip(name: str, embedded_runs: list[tuple[Variant, dict[str, Any]]]) -> None:
    variant, result = next((v, r) for v, r in embedded_runs if v.name == name)
    check_all(variant, result)


def test_hash_replaces_the_personal_field_in_the_service(embedded_runs: list[tuple[Variant, dict[str, Any]]]) -> None:
    variant, result = next((v, r) for v, r in embedded_runs if v.name == "reference_hash")
    projections = dict(result["registry"]["services"]["ranking_v1"])
    assert projections["driver_activity"][-1] == "phone_number_sha256"
    assert "phone_number" not in projections["driver_activity"]
    assert "phone_number" not in result["registry"]["views"]["driver_activity"]  # never materialized
    hashes = result["online"]["ranking_v1"]["phone_number_sha256"]
    raws = [
        expected_value(variant, "driver_activity", "phone_number", r) for r in variant.request()["online"]["ranking_v1"]
    ]
    assert hashes[:3] == [hmac.new(SALT.encode(), r.encode(), hashlib.sha256).hexdigest() for r in raws[:3]]
    assert hashes[3] is None and raws[3] is None  # unknown driver


def _redis() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis does not answer on 127.0.0.1:6379: {exc}")
    return client


@pytest.mark.redis
@pytest.mark.parametrize("handling", ["hash", "encrypt"])
def test_redis_round_trip(handling: str, tmp_path: Path) -> None:
    """Also: with pii_handling hash or encrypt, a scan of every Redis value of the project finds no raw personal
    value (encrypt: the ciphertexts there decrypt for the role granted read_pii, and for no other role)."""
    client = _redis()
    data = pii_data(handling)
    data["project"]["name"] = f"archgen_fr_{uuid.uuid4().hex[:10]}"  # a Feast project of its own
    data["serving"]["latency_p99_ms"] = 5  # strict latency: the rules pick Redis
    arch = arch_of(data)
    assert arch.feature_store is not None and arch.feature_store.online_store == "redis"
    arch = arch_of(data, offline_store="file", registry="file")
    variant = make_variant("redis", arch, tmp_path, env={"REDIS_CONNECTION_STRING": "127.0.0.1:6379,db=0"})
    project = arch.feature_store.project.encode()  # type: ignore[union-attr]
    try:
        variant.dump_online = True
        (result,) = run_variants([variant], tmp_path)
        assert any(k.endswith(project) for k in client.scan_iter(count=1000)) is False  # teardown cleaned up
        check_all(variant, result)
        assert len(result["online_dump"]) > 20, result["online_dump"]
        assert_no_raw_pii(variant, [bytes.fromhex(c) for c in result["online_dump"]], "Redis online store")
    finally:
        for key in client.scan_iter(match=b"*" + project, count=1000):
            client.delete(key)


@pytest.mark.postgres
@pytest.mark.parametrize("handling", ["hash", "encrypt"])
def test_postgres_round_trip(handling: str, tmp_path: Path) -> None:
    """Also: with pii_handling hash or encrypt, a scan of every table the system wrote finds no raw personal
    value (encrypt: the ciphertexts there decrypt for the role granted read_pii, and for no other role)."""
    data = pii_data(handling)
    data["existing"]["warehouse"] = "postgres"
    data["delivery"]["mlops_level"] = 2  # a shared SQL registry
    arch = arch_of(data)
    fs = arch.feature_store
    assert fs is not None and (fs.online_store, fs.offline_store, fs.registry) == ("postgres", "postgres", "sql")
    with scratch_database("archgen_fr") as (db, user):
        env = postgres_env(db, user)
        variant = make_variant("postgres", arch, tmp_path, "--postgres", env=env)
        (result,) = run_variants([variant], tmp_path)
        check_all(variant, result)
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, dbname=db, user=user) as conn:
            tables = {r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
        assert {"driver_activity", "ride_outcomes"} <= tables  # the warehouse tables the sources read
        assert any("registry" in t or "feast" in t or "projects" in t for t in tables), tables  # SQL registry
        # the protected copy and the online table: the system's own tables, with hashes and no raw value
        assert "driver_activity_protected" in tables
        online = [t for t in tables if t.startswith(arch.spec.project.name + "_")]
        assert online, tables
        with psycopg.connect(host="127.0.0.1", port=5432, dbname=db, user=user) as conn:
            raw = conn.execute('SELECT * FROM "driver_activity"').fetchall()  # the source: the scan must see it
            with pytest.raises(AssertionError, match="raw values"):
                assert_no_raw_pii(variant, [str(c).encode() for row in raw for c in row], "source")
            for table in ["driver_activity_protected", *online]:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()  # names from pg_tables
                cells = [c if isinstance(c, bytes) else str(c).encode() for row in rows for c in row]
                assert_no_raw_pii(variant, cells, f"PostgreSQL table {table}")
            columns = {
                r[0]
                for r in conn.execute(
                    "select column_name from information_schema.columns where table_name = 'driver_activity_protected'"
                )
            }
        protected = "phone_number_encrypted" if handling == "encrypt" else "phone_number_sha256"
        assert protected in columns and "phone_number" not in columns, columns
