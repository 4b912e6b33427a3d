"""Cross-reference checks: everything a spec names must exist, and names must not collide."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

from .errors import Diagnostic, Path
from .loader import SourceMap
from .models import FeatureField, RequestSourceSpec, Serving, Spec, StreamSourceSpec

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
    _check(report, spec)
    return report.found


def _check(report: _Report, spec: Spec) -> None:
    _unique(report, ((("entities", i, "name"), e.name) for i, e in enumerate(spec.entities)), "entity")
    _unique(report, ((("sources", i, "name"), s.name) for i, s in enumerate(spec.sources)), "source")
    entities = {e.name for e in spec.entities}
    sources = {s.name: s for s in spec.sources}

    for i, src in enumerate(spec.sources):
        if isinstance(src, StreamSourceSpec):
            batch = sources.get(src.batch_source)
            path = ("sources", i, "batch_source")
            if batch is None:
                report.unknown(path, f"unknown source {src.batch_source!r}", _suggest(src.batch_source, sources))
            elif batch.kind not in ("file", "table"):
                report.add(
                    path,
                    f"the batch source of a stream must be a file or table source, "
                    f"{batch.name!r} is a {batch.kind} source",
                )
        if isinstance(src, RequestSourceSpec):
            _unique(report, ((("sources", i, "fields", j, "name"), f.name) for j, f in enumerate(src.fields)), "field")

    features = spec.features
    view_fields: dict[str, set[str]] = {}
    if features is not None:
        request_sources = [
            (("sources", i, "name"), s.name) for i, s in enumerate(spec.sources) if isinstance(s, RequestSourceSpec)
        ]
        namespace: list[tuple[Path, str]] = [
            *((("features", "views", i, "name"), v.name) for i, v in enumerate(features.views)),
            *((("features", "on_demand", i, "name"), v.name) for i, v in enumerate(features.on_demand)),
            *request_sources,
        ]
        _unique(
            report,
            namespace,
            "feature view (views, on-demand views and request sources share one namespace)",
        )
        _unique(
            report,
            ((("features", "services", i, "name"), s.name) for i, s in enumerate(features.services)),
            "feature service",
        )
        for i, view in enumerate(features.views):
            base: Path = ("features", "views", i)
            view_fields[view.name] = _fields_of(view.fields)
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
        request_fields = {s.name: _fields_of(s.fields) for s in spec.sources if isinstance(s, RequestSourceSpec)}
        for i, odv in enumerate(features.on_demand):
            base = ("features", "on_demand", i)
            _unique(report, (((*base, "fields", j, "name"), f.name) for j, f in enumerate(odv.fields)), "field")
            known = {**view_fields, **request_fields}
            for j, ref in enumerate(odv.inputs):
                _check_ref(report, ref, known, (*base, "inputs", j))
        odv_fields = {o.name: _fields_of(o.fields) for o in features.on_demand}
        servable = {**view_fields, **odv_fields}
        for i, svc in enumerate(features.services):
            base = ("features", "services", i)
            seen: dict[str, int] = {}
            for j, ref in enumerate(svc.features):
                if ref in seen:
                    report.add((*base, "features", j), f"{ref!r} is listed twice")
                seen[ref] = j
                _check_ref(report, ref, servable, (*base, "features", j))
            # Feast serves fields by name: two views offering the same field name would collide
            names: dict[str, str] = {}
            for j, ref in enumerate(svc.features):
                _, _, fname = ref.partition(".")
                if fname in names and names[fname] != ref:
                    report.add(
                        (*base, "features", j),
                        f"field name {fname!r} is served twice ({names[fname]} and {ref})",
                        "rename one of the fields: a model input is named after its field",
                    )
                names.setdefault(fname, ref)

    training = spec.training
    if training.trigger == "schedule" and training.schedule is None:
        report.add(
            ("training", "schedule"),
            "trigger is `schedule` but no schedule is given",
            'add e.g. `schedule: "@daily"` or set `trigger: manual`',
        )
    _check_quality(report, spec)
    if training.label is not None:
        label_src = sources.get(training.label.source)
        if label_src is None:
            report.unknown(
                ("training", "label", "source"),
                f"unknown source {training.label.source!r}",
                _suggest(training.label.source, sources),
            )
        elif isinstance(label_src, RequestSourceSpec):
            report.add(("training", "label", "source"), "a label cannot come from a request source")
        elif training.label.field in {e.join_key for e in spec.entities} | {label_src.timestamp_field}:
            report.add(
                ("training", "label", "field"), "the label must be its own column, not a join key or the timestamp"
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

    serving = spec.serving
    models = {m.name for m in serving.models}
    _unique(report, ((("serving", "models", i, "name"), m.name) for i, m in enumerate(serving.models)), "model")
    services = {s.name for s in features.services} if features else set()
    for i, model in enumerate(serving.models):
        base = ("serving", "models", i)
        _unique(report, (((*base, "inputs", j, "name"), t.name) for j, t in enumerate(model.inputs)), "input")
        _unique(report, (((*base, "outputs", j, "name"), t.name) for j, t in enumerate(model.outputs)), "output")
        if model.feature_service is not None:
            if model.feature_service not in services:
                report.unknown(
                    (*base, "feature_service"),
                    f"unknown feature service {model.feature_service!r}",
                    _suggest(model.feature_service, services) or "declare it under features.services",
                )
        elif not model.inputs:
            report.add(
                base,
                f"model {model.name!r} has neither a feature_service nor inputs",
                "name the feature service it reads, or declare its input tensors",
            )
        if model.stateful and serving.pipeline is not None and model.name in serving.pipeline.steps:
            pass  # a stateful step is allowed; the decision engine reports what that costs
    if serving.pipeline is not None:
        pipe = serving.pipeline
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

    if serving.population is not None:
        population = sources.get(serving.population)
        if population is None:
            report.unknown(
                ("serving", "population"),
                f"unknown source {serving.population!r}",
                _suggest(serving.population, sources) or "declare it under sources (kind: file or table)",
            )
        elif population.kind not in ("file", "table"):
            report.add(
                ("serving", "population"),
                f"source {serving.population!r} is a {population.kind} source; the population is a file or table",
                "name a file or table source whose rows hold the entity keys to score",
            )
    _unique(report, ((("privacy", "access", i, "role"), a.role) for i, a in enumerate(spec.privacy.access)), "role")


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


def _check_quality(report: _Report, spec: Spec) -> None:
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
