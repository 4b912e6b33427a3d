"""Cross-reference checks: everything a spec names must exist, and names must not collide."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from difflib import get_close_matches

from .errors import Diagnostic, Path
from .loader import SourceMap
from .models import (
    GRANULARITY_SECONDS,
    NUMERIC_DTYPES,
    FeatureField,
    FeatureViewSpec,
    RequestSourceSpec,
    Serving,
    Spec,
    StreamSourceSpec,
)
from .types import duration_seconds

#: the codes of reference problems
DUPLICATE = "spec.duplicate_name"
UNKNOWN = "spec.unknown_reference"
INCONSISTENT = "spec.inconsistent"


class _Report:
    """The diagnostics found so far, located through the spec's source map."""

    def __init__(self, source_map: SourceMap) -> None:
        self.source_map = source_map
        self.found: list[Diagnostic] = []

    def add(
        self,
        path: Path,
        message: str,
        hint: str | None = None,
        *,
        code: str = INCONSISTENT,
        related: Path | None = None,
    ) -> None:
        """A problem at ``path``; ``related``: another place it involves (the first of two duplicates)."""
        self.found.append(
            self.source_map.diagnostic(code, path, message, hint, related=(related,) if related is not None else ())
        )

    def unknown(self, path: Path, message: str, hint: str | None = None) -> None:
        """``path`` names something the spec does not declare."""
        self.add(path, message, hint, code=UNKNOWN)


def _suggest(name: str, choices: Iterable[str]) -> str | None:
    options = sorted(set(choices))
    close = get_close_matches(name, options, n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    if options:
        return "declared: " + ", ".join(options[:12]) + (" ..." if len(options) > 12 else "")
    return None


def _unique(report: _Report, items: Iterable[tuple[Path, str]], what: str) -> None:
    first: dict[str, Path] = {}
    for path, name in items:
        if name in first:
            report.add(path, f"duplicate {what} name {name!r}", code=DUPLICATE, related=first[name])
        else:
            first[name] = path


def _fields_of(fields: list[FeatureField]) -> set[str]:
    return {f.name for f in fields}


def check_references(spec: Spec, source_map: SourceMap | None = None) -> list[Diagnostic]:
    """Every reference problem of a spec the models accepted, located through ``source_map``."""
    report = _Report(source_map or SourceMap("<spec>"))
    for section in SECTIONS:
        section(report, spec)
    return report.found


# ---------------------------------------------------------------- entities and sources
def _names(report: _Report, spec: Spec) -> None:
    """Entity and source names are unique."""
    _unique(report, ((("entities", i, "name"), e.name) for i, e in enumerate(spec.entities)), "entity")
    _unique(report, ((("sources", i, "name"), s.name) for i, s in enumerate(spec.sources)), "source")


def _sources(report: _Report, spec: Spec) -> None:
    """A stream's batch source is a file or table source; a request source's fields are unique."""
    sources = {s.name: s for s in spec.sources}
    for i, src in enumerate(spec.sources):
        if isinstance(src, RequestSourceSpec):
            _unique(report, ((("sources", i, "fields", j, "name"), f.name) for j, f in enumerate(src.fields)), "field")
        if not isinstance(src, StreamSourceSpec):
            continue
        batch = sources.get(src.batch_source)
        path = ("sources", i, "batch_source")
        if batch is None:
            report.unknown(path, f"unknown source {src.batch_source!r}", _suggest(src.batch_source, sources))
        elif batch.kind not in ("file", "table"):
            report.add(
                path,
                f"the batch source of a stream must be a file or table source, {batch.name!r} is a {batch.kind} source",
            )


# ---------------------------------------------------------------- features
def _request_fields(spec: Spec) -> dict[str, set[str]]:
    return {s.name: _fields_of(s.fields) for s in spec.sources if isinstance(s, RequestSourceSpec)}


def _feature_names(report: _Report, spec: Spec) -> None:
    """Views, on-demand views and request sources share one namespace; feature service names are unique."""
    features = spec.features
    if features is None:
        return
    request_sources = [
        (("sources", i, "name"), s.name) for i, s in enumerate(spec.sources) if isinstance(s, RequestSourceSpec)
    ]
    catalog = spec.existing.feature_registry.views if spec.existing.feature_registry else []
    namespace: list[tuple[Path, str]] = [
        *((("existing", "feature_registry", "views", i, "name"), v.name) for i, v in enumerate(catalog)),
        *((("features", "views", i, "name"), v.name) for i, v in enumerate(features.views)),
        *((("features", "on_demand", i, "name"), v.name) for i, v in enumerate(features.on_demand)),
        *request_sources,
    ]
    _unique(report, namespace, "feature view (views, on-demand views and request sources share one namespace)")
    _unique(
        report,
        ((("features", "services", i, "name"), s.name) for i, s in enumerate(features.services)),
        "feature service",
    )


def _feature_views(report: _Report, spec: Spec) -> None:
    """Each view: unique fields, declared entities, a file, table or stream source, no clash with its columns."""
    if spec.features is None:
        return
    entities = {e.name for e in spec.entities}
    sources = {s.name: s for s in spec.sources}
    for i, view in enumerate(spec.features.views):
        base: Path = ("features", "views", i)
        _unique(report, (((*base, "fields", j, "name"), f.name) for j, f in enumerate(view.fields)), "field")
        for j, ent in enumerate(view.entities):
            if ent not in entities:
                report.unknown((*base, "entities", j), f"unknown entity {ent!r}", _suggest(ent, entities))
        view_src = sources.get(view.source)
        if view_src is None:
            report.unknown((*base, "source"), f"unknown source {view.source!r}", _suggest(view.source, sources))
        elif isinstance(view_src, RequestSourceSpec):
            report.add(
                (*base, "source"),
                f"{view.source!r} is a request source; a feature view reads a file, table or stream source",
                "use request values in an on-demand view (features.on_demand)",
            )
        else:
            reserved = {view_src.timestamp_field} | {e.join_key for e in spec.entities if e.name in view.entities}
            for j, f in enumerate(view.fields):
                if f.name in reserved:
                    report.add(
                        (*base, "fields", j, "name"),
                        f"field {f.name!r} clashes with the source's timestamp or join key column",
                    )
        if view.aggregations:
            _aggregated_view(report, view, base, view_src)
            _aggregations(report, view, base)


def _on_demand_views(report: _Report, spec: Spec) -> None:
    """Each on-demand view: unique fields, inputs that name a field of a view or request source."""
    if spec.features is None:
        return
    known = {**{v.name: _fields_of(v.served_fields) for v in spec.features.views}, **_request_fields(spec)}
    for i, odv in enumerate(spec.features.on_demand):
        base: Path = ("features", "on_demand", i)
        _unique(report, (((*base, "fields", j, "name"), f.name) for j, f in enumerate(odv.fields)), "field")
        for j, ref in enumerate(odv.inputs):
            _check_ref(report, ref, known, (*base, "inputs", j))


def _feature_services(report: _Report, spec: Spec) -> None:
    """Each service lists fields of views or on-demand views, each once, no field name twice."""
    features = spec.features
    if features is None:
        return
    servable = {v.name: _fields_of(v.served_fields) for v in features.views}
    servable |= {o.name: _fields_of(o.fields) for o in features.on_demand}
    if spec.existing.feature_registry is not None:  # the joined catalog's views, as far as this spec reads them
        servable |= {v.name: _fields_of(v.fields) for v in spec.existing.feature_registry.views}
    for i, svc in enumerate(features.services):
        base: Path = ("features", "services", i, "features")
        seen: set[str] = set()
        names: dict[str, str] = {}  # Feast serves fields by name: two views offering one field name collide
        for j, ref in enumerate(svc.features):
            if ref in seen:
                report.add((*base, j), f"{ref!r} is listed twice")
            seen.add(ref)
            _check_ref(report, ref, servable, (*base, j))
            _, _, fname = ref.partition(".")
            if fname in names and names[fname] != ref:
                report.add(
                    (*base, j),
                    f"field name {fname!r} is served twice ({names[fname]} and {ref})",
                    "rename one of the fields: a model input is named after its field",
                )
            names.setdefault(fname, ref)


def _aggregated_view(report: _Report, view: FeatureViewSpec, base: Path, source: object) -> None:
    """A view with aggregations: a grain to compute its rollups at, a ttl that outlives it, raw events, no PII."""
    if view.granularity is None:
        report.add(
            (*base, "aggregations"),
            "a view with aggregations needs a granularity: the step its rollups are computed at",
            "add e.g. `granularity: day`",
        )
    elif duration_seconds(view.ttl) < GRANULARITY_SECONDS[view.granularity]:
        report.add(
            (*base, "ttl"),
            f"ttl {view.ttl} is shorter than the {view.granularity} granularity: each rollup would expire "
            "before the next one is computed",
            f"set ttl to at least one {view.granularity}",
        )
    if isinstance(source, StreamSourceSpec):
        report.add(
            (*base, "source"),
            f"{view.source!r} is a stream source; aggregations read raw events from a file or table source",
            f"read the stream's batch source {source.batch_source!r}",
        )
    for j, f in enumerate(view.fields):
        if f.pii:
            report.add(
                (*base, "fields", j, "pii"),
                f"field {f.name!r} is personal data: an aggregated view serves rollups, and personal data is "
                "not aggregated",
                "keep the personal column in a view without aggregations",
            )


def _aggregations(report: _Report, view: FeatureViewSpec, base: Path) -> None:
    """Each aggregation reads a field of the view (numeric but for counts), over windows on the view's grain."""
    fields = {f.name: f for f in view.fields}
    grain = GRANULARITY_SECONDS[view.granularity] if view.granularity else None
    outputs: list[tuple[Path, str]] = []
    for i, agg in enumerate(view.aggregations):
        path: Path = (*base, "aggregations", i)
        outputs += [((*path, "function"), name) for name, _ in agg.outputs()]
        found = fields.get(agg.column)
        if found is None:
            hint = _suggest(agg.column, fields) or "declare the raw event column under fields"
            report.unknown((*path, "column"), f"view {view.name!r} has no field {agg.column!r}", hint)
        elif agg.function not in ("count", "count_distinct") and found.dtype not in NUMERIC_DTYPES:
            report.add(
                (*path, "function"),
                f"{agg.function} needs a numeric column; {agg.column!r} is {found.dtype}",
                "use count or count_distinct, or aggregate a numeric field",
            )
        _windows(report, view, agg.windows, path, grain)
    _unique(report, outputs, f"aggregated feature (in view {view.name!r})")


def _windows(report: _Report, view: FeatureViewSpec, windows: list[str], path: Path, grain: int | None) -> None:
    """An aggregation's windows: each once, each a whole number of grains."""
    seen: dict[int, str] = {}
    for k, window in enumerate(windows):
        seconds = duration_seconds(window)
        if seconds in seen:
            report.add((*path, "windows", k), f"window {window} is the same as {seen[seconds]}")
        seen.setdefault(seconds, window)
        if grain is not None and (seconds < grain or seconds % grain):
            report.add(
                (*path, "windows", k),
                f"window {window} is not a whole number of {view.granularity}s (the view's granularity)",
                "rollups are computed at each grain boundary: use a multiple of the granularity",
            )


def _catalog(report: _Report, spec: Spec) -> None:
    """The views of a joined feature catalog: keyed by declared entities, each field once, read by features."""
    registry = spec.existing.feature_registry
    if registry is None:
        return
    if spec.features is None:
        report.add(
            ("existing", "feature_registry"),
            "a feature catalog is joined but the spec declares no features",
            "add a features section whose services read the catalog's views",
        )
    entities = {e.name for e in spec.entities}
    for i, view in enumerate(registry.views):
        base: Path = ("existing", "feature_registry", "views", i)
        _unique(report, (((*base, "fields", j, "name"), f.name) for j, f in enumerate(view.fields)), "field")
        for j, ent in enumerate(view.entities):
            if ent not in entities:
                report.unknown((*base, "entities", j), f"unknown entity {ent!r}", _suggest(ent, entities))


# ---------------------------------------------------------------- training
def _training(report: _Report, spec: Spec) -> None:
    """A scheduled trigger has a schedule; the resources agree with the accelerator."""
    training = spec.training
    if training.trigger == "schedule" and training.schedule is None:
        report.add(
            ("training", "schedule"),
            "trigger is `schedule` but no schedule is given",
            'add e.g. `schedule: "@daily"` or set `trigger: manual`',
        )
    res = training.resources
    if res.accelerator == "gpu" and res.gpus == 0:
        report.add(("training", "resources", "gpus"), "accelerator is gpu but gpus is 0", "set `gpus: 1`")
    if res.accelerator == "cpu" and res.gpus > 0:
        report.add(
            ("training", "resources", "gpus"),
            f"{res.gpus} GPUs requested but accelerator is cpu",
            "set `accelerator: gpu` or remove `gpus`",
        )


def _label(report: _Report, spec: Spec) -> None:
    """The label comes from a file, table or stream source, from a column of its own."""
    label = spec.training.label
    if label is None:
        return
    sources = {s.name: s for s in spec.sources}
    label_src = sources.get(label.source)
    if label_src is None:
        report.unknown(
            ("training", "label", "source"), f"unknown source {label.source!r}", _suggest(label.source, sources)
        )
    elif isinstance(label_src, RequestSourceSpec):
        report.add(("training", "label", "source"), "a label cannot come from a request source")
    elif label.field in {e.join_key for e in spec.entities} | {label_src.timestamp_field}:
        report.add(("training", "label", "field"), "the label must be its own column, not a join key or the timestamp")


# ---------------------------------------------------------------- serving
def _models(report: _Report, spec: Spec) -> None:
    """Unique model, input and output names; each model reads a declared feature service or its own inputs.

    A stateful pipeline step is allowed: the decision engine reports what it costs.
    """
    serving = spec.serving
    _unique(report, ((("serving", "models", i, "name"), m.name) for i, m in enumerate(serving.models)), "model")
    services = {s.name for s in spec.features.services} if spec.features else set()
    for i, model in enumerate(serving.models):
        base: Path = ("serving", "models", i)
        _unique(report, (((*base, "inputs", j, "name"), t.name) for j, t in enumerate(model.inputs)), "input")
        _unique(report, (((*base, "outputs", j, "name"), t.name) for j, t in enumerate(model.outputs)), "output")
        if model.feature_service is not None and model.feature_service not in services:
            report.unknown(
                (*base, "feature_service"),
                f"unknown feature service {model.feature_service!r}",
                _suggest(model.feature_service, services) or "declare it under features.services",
            )
        elif model.feature_service is None and not model.inputs:
            report.add(
                base,
                f"model {model.name!r} has neither a feature_service nor inputs",
                "name the feature service it reads, or declare its input tensors",
            )


def _pipeline(report: _Report, spec: Spec) -> None:
    """A pipeline is named apart from its models, chains declared models, and returns their tensors."""
    serving, pipe = spec.serving, spec.serving.pipeline
    if pipe is None:
        return
    models = {m.name for m in serving.models}
    if pipe.name in models:
        report.add(
            ("serving", "pipeline", "name"),
            f"pipeline name {pipe.name!r} is also a model name",
            "the pipeline becomes a Triton model of its own; give it another name",
        )
    seen_steps: set[str] = set()
    for j, step in enumerate(pipe.steps):
        if step not in models:
            report.unknown(("serving", "pipeline", "steps", j), f"unknown model {step!r}", _suggest(step, models))
        if step in seen_steps and not pipe.conditional:
            report.add(
                ("serving", "pipeline", "steps", j),
                f"model {step!r} appears twice in a fixed line",
                "set `conditional: true` for loops",
            )
        seen_steps.add(step)
    _check_pipeline_tensors(report, serving)


def _population(report: _Report, spec: Spec) -> None:
    """Batch scoring's population is a declared file or table source."""
    name = spec.serving.population
    if name is None:
        return
    sources = {s.name: s for s in spec.sources}
    population = sources.get(name)
    if population is None:
        report.unknown(
            ("serving", "population"),
            f"unknown source {name!r}",
            _suggest(name, sources) or "declare it under sources (kind: file or table)",
        )
    elif population.kind not in ("file", "table"):
        report.add(
            ("serving", "population"),
            f"source {name!r} is a {population.kind} source; the population is a file or table",
            "name a file or table source whose rows hold the entity keys to score",
        )


def _batch_requests(report: _Report, spec: Spec) -> None:
    """A batch run scores stored keys and has no request: its services read no request-time value."""
    if spec.serving.mode != "batch" or spec.features is None:
        return
    scored = {m.feature_service for m in spec.serving.models if m.feature_service}
    for i, svc in enumerate(spec.features.services):
        if svc.name not in scored:
            continue
        for j, ref in enumerate(svc.features):
            read = spec.requests_read_by(ref)
            if read:
                report.add(
                    ("features", "services", i, "features", j),
                    f"{ref!r} is computed from the request source {', '.join(read)}, and a batch run "
                    "(serving.mode: batch) has no request",
                    "compute it from stored features (an on-demand view over views only, or a view of the "
                    "warehouse), or serve the model online",
                )


# ---------------------------------------------------------------- privacy
def _privacy(report: _Report, spec: Spec) -> None:
    """Access roles are unique; a role that may decrypt (read_pii) also reads something."""
    _unique(report, ((("privacy", "access", i, "role"), a.role) for i, a in enumerate(spec.privacy.access)), "role")
    for i, a in enumerate(spec.privacy.access):
        if "read_pii" in a.can and not {"online_read", "offline_read"} & set(a.can):
            report.add(
                ("privacy", "access", i, "can", a.can.index("read_pii")),
                f"role {a.role!r} may decrypt personal data (read_pii) but reads nothing to decrypt",
                "add online_read or offline_read to the role, or remove read_pii",
            )


# ---------------------------------------------------------------- autonomy
def _air_gap(report: _Report, spec: Spec) -> None:
    """An air-gapped system names the site's image registry and package mirror: nothing public is reachable."""
    if spec.autonomy != "air_gapped":
        return
    for name, example in (
        ("image_registry", "registry.site.internal/ml"),
        ("package_mirror", "https://pypi.site.internal/simple"),
    ):
        if getattr(spec.existing, name) is None:
            what = "images" if name == "image_registry" else "Python packages"
            report.add(
                ("autonomy",),
                f"autonomy is air_gapped but existing.{name} is not set: nothing public is reachable, so "
                f"{what} must come from the site",
                f"set existing.{name} (e.g. {example})",
            )


def _check_pipeline_tensors(report: _Report, serving: Serving) -> None:
    """`step.output` references of a pipeline's returned tensors and stop condition."""
    pipe = serving.pipeline
    if pipe is None:
        return
    outputs = {m.name: {t.name for t in m.outputs} for m in serving.models if m.name in pipe.steps}
    refs: list[tuple[Path, str]] = [(("serving", "pipeline", "outputs", i), r) for i, r in enumerate(pipe.outputs)]
    if pipe.stop_when is not None:
        refs.append((("serving", "pipeline", "stop_when", "tensor"), pipe.stop_when.tensor))
        if not pipe.conditional:
            report.add(
                ("serving", "pipeline", "stop_when"),
                "a fixed line (conditional: false) never stops early",
                "set `conditional: true`, or remove stop_when",
            )
    for path, ref in refs:
        step, _, tensor = ref.partition(".")
        if step not in outputs:
            report.unknown(path, f"{step!r} is not a step of pipeline {pipe.name}", _suggest(step, outputs))
        elif tensor not in outputs[step]:
            report.unknown(path, f"step {step!r} has no output {tensor!r}", _suggest(tensor, outputs[step]))
    if len(set(pipe.outputs)) != len(pipe.outputs):
        report.add(("serving", "pipeline", "outputs"), "a tensor is returned twice")


_UNIT_INTERVAL = {"roc_auc", "accuracy", "f1", "precision", "recall"}
_ERRORS = {"log_loss", "rmse", "mae"}


def _quality(report: _Report, spec: Spec) -> None:
    """The minimum quality is a value its metric can reach."""
    quality = spec.training.min_quality
    if quality is None:
        return
    path: Path = ("training", "min_quality", "threshold")
    if quality.metric in _UNIT_INTERVAL and not 0 <= quality.threshold <= 1:
        report.add(path, f"{quality.metric} lies between 0 and 1; {quality.threshold} can never be met")
    elif quality.metric in _ERRORS and quality.threshold < 0:
        report.add(path, f"{quality.metric} is an error, never below 0; use a positive bound")
    elif quality.metric == "r2" and quality.threshold > 1:
        report.add(path, f"r2 is at most 1; {quality.threshold} can never be met")


def _check_ref(report: _Report, ref: str, known: dict[str, set[str]], path: Path) -> None:
    view, _, field = ref.partition(".")
    if view not in known:
        report.unknown(path, f"unknown feature view {view!r} in {ref!r}", _suggest(view, known))
    elif field not in known[view]:
        report.unknown(path, f"view {view!r} has no field {field!r}", _suggest(field, known[view]))


#: the checks, one per section of the spec, in the order of the spec
SECTIONS: tuple[Callable[[_Report, Spec], None], ...] = (
    _names,
    _sources,
    _catalog,
    _feature_names,
    _feature_views,
    _on_demand_views,
    _feature_services,
    _training,
    _quality,
    _label,
    _models,
    _pipeline,
    _population,
    _batch_requests,
    _privacy,
    _air_gap,
)
