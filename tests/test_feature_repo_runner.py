"""The Feast half of the feature-repo end-to-end tests, run as a subprocess (one per variant).

Not a test module by itself: ``python tests/test_feature_repo_runner.py REQUESTS.json RESULTS.json``
runs, for each generated repository in the request list, what its Makefile runs —
``feast -c feature_repo apply`` (the CLI entry point, in process), ``scripts/materialize.py`` — then
reads the registry, online features through each feature service, direct reads of named features and
historical features, and writes what it saw as JSON. The tests compare that with the sample data.
Feast is imported once per process; between repositories the generated definition modules
(entities.py, views.py, ...), which Feast imports by bare name, are forgotten again.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import sys
from pathlib import Path
from typing import Any


def _run_script(path: Path, *args: str) -> None:
    saved = sys.argv
    sys.argv = [str(path), *args]
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"{path.name} exited with {exc.code}") from None
    finally:
        sys.argv = saved


def _registry(store: Any) -> dict[str, Any]:
    return {
        "services": {
            s.name: [[p.name, [f.name for f in p.features]] for p in s.feature_view_projections]
            for s in store.list_feature_services()
        },
        "views": {v.name: [f.name for f in v.features] for v in store.list_feature_views()},
        "odfvs": {v.name: [f.name for f in v.features] for v in store.list_on_demand_feature_views()},
        "permissions": sorted(p.name for p in store.list_permissions()),
        "sources": sorted(s.name for s in store.list_data_sources()),
    }


def _authz(store: Any, checks: list[list[str]]) -> dict[str, str]:
    """`view|role|action` -> "allowed" or the error Feast's enforce_policy raised."""
    from feast.permissions.action import AuthzedAction
    from feast.permissions.enforcer import enforce_policy
    from feast.permissions.user import User

    permissions = store.list_permissions()
    out: dict[str, str] = {}
    for view in store.list_feature_views():
        for role, action in checks:
            user = User(username=f"user-{role}", roles=[role])
            try:
                enforce_policy(permissions, user, [view], [AuthzedAction[action]])
                out[f"{view.name}|{role}|{action}"] = "allowed"
            except Exception as exc:  # FeastPermissionError: the refusal under test
                out[f"{view.name}|{role}|{action}"] = f"{type(exc).__name__}: {exc}"
    return out


def _redis_dump(store: Any) -> list[str]:
    """Every key and hash value this project holds in Redis, hex-encoded bytes."""
    import redis

    host_port, *options = store.config.online_store.connection_string.split(",")
    host, _, port = host_port.partition(":")
    db = next((int(o.split("=", 1)[1]) for o in options if o.startswith("db=")), 0)
    client = redis.Redis(host=host, port=int(port or 6379), db=db)
    project = store.project.encode()
    out: list[str] = []
    for key in client.scan_iter(count=1000):
        if not key.endswith(project):
            continue
        out.append(key.hex())
        for field, value in client.hgetall(key).items():
            out += [field.hex(), value.hex()]
    return out


def main(request_path: str, result_path: str) -> int:
    results = [run_one(request) for request in json.loads(Path(request_path).read_text())]
    Path(result_path).write_text(json.dumps(results, default=str, indent=1, sort_keys=True))
    return 0


def _forget(repo: Path) -> None:
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None) or ""
        if origin.startswith(str(repo)):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p != str(repo) and not p.startswith(f"{repo}{os.sep}")]


def run_one(request: dict[str, Any]) -> dict[str, Any]:
    saved_env = dict(os.environ)
    os.environ.update(request.get("env", {}))
    try:
        return _run_one(request)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        _forget(Path(request["root"]))


def _client_reads(root: Path, store: Any, online: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The generated serving path's online reads (OnlineReads: the Triton client's, or the REST runtime's
    in-process predictor's) beside get_online_features, on the same rows.

    For each service, and for a service of its stored feature views alone when it has on-demand views (applied
    here; the on-demand service takes get_online_features' own path): the rows reversed and the first one
    again (every entity, the unknown one among them, and a repeated one), read both ways, all at once and one
    row at a time; then a Predictor's features of the unknown row alone, which must raise MissingFeatures.
    A serving path without OnlineReads (no online features) is skipped.
    """
    import importlib.util

    from feast import FeatureService

    sys.path.insert(0, str(root))  # the client imports serving.system_data
    client: Any = None
    for module in ("client", "predictor"):  # the REST runtime's client calls its service: the predictor reads
        path = root / "serving" / f"{module}.py"
        spec = importlib.util.spec_from_file_location(f"{module}_{root.name}", path)
        if not path.is_file() or spec is None or spec.loader is None:
            continue
        client = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(client)
        if hasattr(client, "OnlineReads"):
            break
    if not hasattr(client, "OnlineReads"):
        return []
    out = []
    plain_views = {view.name for view in store.list_feature_views()}
    join_keys = {entity.join_key for entity in store.list_entities()}
    for name, rows in online.items():
        service = store.get_feature_service(name)
        stored = [p for p in service.feature_view_projections if p.name in plain_views]
        services = [service]
        if len(stored) < len(service.feature_view_projections):  # on-demand views: their stored inputs alone
            views = [store.get_feature_view(p.name)[[f.name for f in p.features]] for p in stored]
            services.append(FeatureService(name=f"{name}_stored_views", features=views))
            store.apply([services[-1]])  # Feast reads a service's definition from its registry
        for each in services:
            keys = [k for k in rows[0] if k in join_keys]
            asked = [{k: row[k] for k in (keys if each is not service else row)} for row in [*rows[::-1], rows[0]]]
            reads = client.OnlineReads(store, each)
            on_demand = each is service and len(services) > 1
            fast = reads.read(asked)
            feast = store.get_online_features(features=each, entity_rows=asked).to_dict()
            out.append({"service": each.name, "on_demand": on_demand, "fast": fast, "feast": feast})
            # one row a request, as the serving client asks
            alone = [reads.read([row]) for row in asked]
            feast_alone = [store.get_online_features(features=each, entity_rows=[row]).to_dict() for row in asked]
            out.append(
                {
                    "service": f"{each.name}, one row at a time",
                    "on_demand": on_demand,
                    "fast": None if None in alone else _joined(alone),
                    "feast": _joined(feast_alone),
                }
            )
    if module == "client":
        predictor = client.Predictor(url="127.0.0.1:9", repo_path=root / "feature_repo")  # Triton is never called
    else:
        predictor = client.Predictor(repo_path=root / "feature_repo")  # no model: features are all it is asked
    unknown = next(iter(online.values()))[-1]
    try:
        predictor.features([unknown])
        out.append({"missing": "no error"})
    except client.MissingFeatures as exc:
        out.append({"missing": type(exc).__name__, "message": str(exc)})
    return out


def _joined(reads: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    """Reads of one row each, as one read of all the rows."""
    return {name: [value for read in reads for value in read[name]] for name in reads[0]}


def _run_one(request: dict[str, Any]) -> dict[str, Any]:
    root = Path(request["root"])
    repo = root / "feature_repo"
    cwd = os.getcwd()

    import pandas as pd
    from feast import FeatureStore
    from feast.cli.cli import cli

    for script in request.get("before_apply", []):  # what the Makefile runs first (scripts/aggregate.py)
        _run_script(root / "scripts" / script, "--until", request["end"])
    cli.main(args=["-c", str(repo), "apply"], standalone_mode=False)  # = `feast -c feature_repo apply`
    os.chdir(cwd)  # apply changes into the repo
    if (root / "scripts" / "materialize.py").exists():  # batch scoring materializes nothing
        _run_script(root / "scripts" / "materialize.py", "--end", request["end"])

    store = FeatureStore(repo_path=str(repo))
    result: dict[str, Any] = {"registry": _registry(store), "online": {}, "direct": [], "historical": {}}
    for name, rows in request["online"].items():
        service = store.get_feature_service(name)
        result["online"][name] = store.get_online_features(features=service, entity_rows=rows).to_dict()
    for read in request["direct"]:
        try:
            got = store.get_online_features(features=read["features"], entity_rows=read["entity_rows"]).to_dict()
            result["direct"].append({"features": read["features"], "result": got})
        except Exception as exc:  # the point of a direct read of a hidden field: it must fail
            result["direct"].append({"features": read["features"], "error": f"{type(exc).__name__}: {exc}"})
    for name, hist in request["historical"].items():
        entity_df = pd.read_parquet(hist["entity_df"])
        df = store.get_historical_features(entity_df=entity_df, features=store.get_feature_service(name)).to_df()
        out = Path(hist["out"])
        df.to_parquet(out, index=False)
        result["historical"][name] = str(out)
    late = request.get("late")
    if late:  # events that arrived late replace the raw ones, then materialization runs again (make materialize)
        shutil.copyfile(late["events"], late["target"])
        _run_script(root / "scripts" / "materialize.py", "--end", late["end"])
        store = FeatureStore(repo_path=str(repo))
        result["late_online"] = {
            name: store.get_online_features(features=store.get_feature_service(name), entity_rows=rows).to_dict()
            for name, rows in late["online"].items()
        }
    if (root / "serving" / "client.py").exists():
        result["client_reads"] = _client_reads(root, store, request["online"])
    if request.get("authz"):  # Feast's own permission check, in process, for each role and action asked
        result["authz"] = _authz(store, request["authz"])
    if request.get("dump_online"):  # every stored value, to scan for personal data before teardown
        result["online_dump"] = _redis_dump(store)
    if request.get("teardown"):
        store.teardown()
    return result


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
