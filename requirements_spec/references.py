"""Cross-reference checks: everything a spec names must exist, and names must not collide."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from difflib import get_close_matches
from typing import NamedTuple

from .errors import Path
from .models import FeatureField, RequestSourceSpec, Serving, Spec, StreamSourceSpec


class Problem(NamedTuple):
    path: Path
    message: str
    hint: str | None = None
    #: another place the problem involves (the first of two duplicates); shown with its line
    related: Path | None = None


def _suggest(name: str, choices: Iterable[str]) -> str | None:
    options = sorted(set(choices))
    close = get_close_matches(name, options, n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    if options:
        return "declared: " + ", ".join(options[:12]) + (" ..." if len(options) > 12 else "")
    return None


def _unique(items: Iterable[tuple[Path, str]], what: str) -> Iterator[Problem]:
    first: dict[str, Path] = {}
    for path, name in items:
        if name in first:
            yield Problem(path, f"duplicate {what} name {name!r}", related=first[name])
        else:
            first[name] = path


def _fields_of(fields: list[FeatureField]) -> set[str]:
    return {f.name for f in fields}


def check_references(spec: Spec) -> list[Problem]:
    return list(_check(spec))


def _check(spec: Spec) -> Iterator[Problem]:
    yield from _unique(((("entities", i, "name"), e.name) for i, e in enumerate(spec.entities)), "entity")
    yield from _unique(((("sources", i, "name"), s.name) for i, s in enumerate(spec.sources)), "source")
    entities = {e.name for e in spec.entities}
    sources = {s.name: s for s in spec.sources}

    for i, src in enumerate(spec.sources):
        if isinstance(src, StreamSourceSpec):
            batch = sources.get(src.batch_source)
            path = ("sources", i, "batch_source")
            if batch is None:
                yield Problem(path, f"unknown source {src.batch_source!r}", _suggest(src.batch_source, sources))
            elif batch.kind not in ("file", "table"):
                yield Problem(
                    path,
                    f"the batch source of a stream must be a file or table source, "
                    f"{batch.name!r} is a {batch.kind} source",
                )
        if isinstance(src, RequestSourceSpec):
            yield from _unique(
                ((("sources", i, "fields", j, "name"), f.name) for j, f in enumerate(src.fields)), "field"
            )

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
        yield from _unique(
            namespace,
            "feature view (views, on-demand views and request sources share one namespace)",
        )
        yield from _unique(
            ((("features", "services", i, "name"), s.name) for i, s in enumerate(features.services)), "feature service"
        )
        for i, view in enumerate(features.views):
            base: Path = ("features", "views", i)
            view_fields[view.name] = _fields_of(view.fields)
            yield from _unique((((*base, "fields", j, "name"), f.name) for j, f in enumerate(view.fields)), "field")
            for j, ent in enumerate(view.entities):
                if ent not in entities:
                    yield Problem((*base, "entities", j), f"unknown entity {ent!r}", _suggest(ent, entities))
            view_src = sources.get(view.source)
            if view_src is None:
                yield Problem((*base, "source"), f"unknown source {view.source!r}", _suggest(view.source, sources))
            elif isinstance(view_src, RequestSourceSpec):
                yield Problem(
                    (*base, "source"),
                    f"{view.source!r} is a request source; a feature view reads a file, table or stream source",
                    "use request values in an on-demand view (features.on_demand)",
                )
            else:
                reserved = {view_src.timestamp_field} | {e.join_key for e in spec.entities if e.name in view.entities}
                for j, f in enumerate(view.fields):
                    if f.name in reserved:
                        yield Problem(
                            (*base, "fields", j, "name"),
                            f"field {f.name!r} clashes with the source's timestamp or join key column",
                        )
        request_fields = {s.name: _fields_of(s.fields) for s in spec.sources if isinstance(s, RequestSourceSpec)}
        for i, odv in enumerate(features.on_demand):
            base = ("features", "on_demand", i)
            yield from _unique((((*base, "fields", j, "name"), f.name) for j, f in enumerate(odv.fields)), "field")
            known = {**view_fields, **request_fields}
            for j, ref in enumerate(odv.inputs):
                yield from _check_ref(ref, known, (*base, "inputs", j))
        odv_fields = {o.name: _fields_of(o.fields) for o in features.on_demand}
        servable = {**view_fields, **odv_fields}
        for i, svc in enumerate(features.services):
            base = ("features", "services", i)
            seen: dict[str, int] = {}
            for j, ref in enumerate(svc.features):
                if ref in seen:
                    yield Problem((*base, "features", j), f"{ref!r} is listed twice")
                seen[ref] = j
                yield from _check_ref(ref, servable, (*base, "features", j))
            # Feast serves fields by name: two views offering the same field name would collide
            names: dict[str, str] = {}
            for j, ref in enumerate(svc.features):
                _, _, fname = ref.partition(".")
                if fname in names and names[fname] != ref:
                    yield Problem(
                        (*base, "features", j),
                        f"field name {fname!r} is served twice ({names[fname]} and {ref})",
                        "rename one of the fields: a model input is named after its field",
                    )
                names.setdefault(fname, ref)

    training = spec.training
    if training.trigger == "schedule" and training.schedule is None:
        yield Problem(
            ("training", "schedule"),
            "trigger is `schedule` but no schedule is given",
            'add e.g. `schedule: "@daily"` or set `trigger: manual`',
        )
    yield from _check_quality(spec)
    if training.label is not None:
        label_src = sources.get(training.label.source)
        if label_src is None:
            yield Problem(
                ("training", "label", "source"),
                f"unknown source {training.label.source!r}",
                _suggest(training.label.source, sources),
            )
        elif isinstance(label_src, RequestSourceSpec):
            yield Problem(("training", "label", "source"), "a label cannot come from a request source")
        elif training.label.field in {e.join_key for e in spec.entities} | {label_src.timestamp_field}:
            yield Problem(
                ("training", "label", "field"), "the label must be its own column, not a join key or the timestamp"
            )
    res = training.resources
    if res.accelerator == "gpu" and res.gpus == 0:
        yield Problem(("training", "resources", "gpus"), "accelerator is gpu but gpus is 0", "set `gpus: 1`")
    if res.accelerator == "cpu" and res.gpus > 0:
        yield Problem(
            ("training", "resources", "gpus"),
            f"{res.gpus} GPUs requested but accelerator is cpu",
            "set `accelerator: gpu` or remove `gpus`",
        )

    serving = spec.serving
    models = {m.name for m in serving.models}
    yield from _unique(((("serving", "models", i, "name"), m.name) for i, m in enumerate(serving.models)), "model")
    services = {s.name for s in features.services} if features else set()
    for i, model in enumerate(serving.models):
        base = ("serving", "models", i)
        yield from _unique((((*base, "inputs", j, "name"), t.name) for j, t in enumerate(model.inputs)), "input")
        yield from _unique((((*base, "outputs", j, "name"), t.name) for j, t in enumerate(model.outputs)), "output")
        if model.feature_service is not None:
            if model.feature_service not in services:
                yield Problem(
                    (*base, "feature_service"),
                    f"unknown feature service {model.feature_service!r}",
                    _suggest(model.feature_service, services) or "declare it under features.services",
                )
        elif not model.inputs:
            yield Problem(
                base,
                f"model {model.name!r} has neither a feature_service nor inputs",
                "name the feature service it reads, or declare its input tensors",
            )
        if model.stateful and serving.pipeline is not None and model.name in serving.pipeline.steps:
            pass  # a stateful step is allowed; the decision engine reports what that costs
    if serving.pipeline is not None:
        pipe = serving.pipeline
        if pipe.name in models:
            yield Problem(
                ("serving", "pipeline", "name"),
                f"pipeline name {pipe.name!r} is also a model name",
                "the pipeline becomes a Triton model of its own; give it another name",
            )
        seen_steps: set[str] = set()
        for j, step in enumerate(pipe.steps):
            if step not in models:
                yield Problem(("serving", "pipeline", "steps", j), f"unknown model {step!r}", _suggest(step, models))
            if step in seen_steps and not pipe.conditional:
                yield Problem(
                    ("serving", "pipeline", "steps", j),
                    f"model {step!r} appears twice in a fixed line",
                    "set `conditional: true` for loops",
                )
            seen_steps.add(step)
        yield from _check_pipeline_tensors(serving)

    if serving.population is not None:
        population = sources.get(serving.population)
        if population is None:
            yield Problem(
                ("serving", "population"),
                f"unknown source {serving.population!r}",
                _suggest(serving.population, sources) or "declare it under sources (kind: file or table)",
            )
        elif population.kind not in ("file", "table"):
            yield Problem(
                ("serving", "population"),
                f"source {serving.population!r} is a {population.kind} source; the population is a file or table",
                "name a file or table source whose rows hold the entity keys to score",
            )
    yield from _unique(((("privacy", "access", i, "role"), a.role) for i, a in enumerate(spec.privacy.access)), "role")
    if spec.autonomy == "air_gapped":
        for name, example in (
            ("image_registry", "registry.site.internal/ml"),
            ("package_mirror", "https://pypi.site.internal/simple"),
        ):
            if getattr(spec.existing, name) is None:
                yield Problem(
                    ("autonomy",),
                    f"autonomy is air_gapped but existing.{name} is not set: nothing public is reachable, so "
                    f"{'images' if name == 'image_registry' else 'Python packages'} must come from the site",
                    f"set existing.{name} (e.g. {example})",
                )
    for i, a in enumerate(spec.privacy.access):
        if "read_pii" in a.can and not {"online_read", "offline_read"} & set(a.can):
            yield Problem(
                ("privacy", "access", i, "can", a.can.index("read_pii")),
                f"role {a.role!r} may decrypt personal data (read_pii) but reads nothing to decrypt",
                "add online_read or offline_read to the role, or remove read_pii",
            )


def _check_pipeline_tensors(serving: Serving) -> Iterator[Problem]:
    """`step.output` references of a pipeline's returned tensors and stop condition."""
    pipe = serving.pipeline
    if pipe is None:
        return
    outputs = {m.name: {t.name for t in m.outputs} for m in serving.models if m.name in pipe.steps}
    refs: list[tuple[Path, str]] = [(("serving", "pipeline", "outputs", i), r) for i, r in enumerate(pipe.outputs)]
    if pipe.stop_when is not None:
        refs.append((("serving", "pipeline", "stop_when", "tensor"), pipe.stop_when.tensor))
        if not pipe.conditional:
            yield Problem(
                ("serving", "pipeline", "stop_when"),
                "a fixed line (conditional: false) never stops early",
                "set `conditional: true`, or remove stop_when",
            )
    for path, ref in refs:
        step, _, tensor = ref.partition(".")
        if step not in outputs:
            yield Problem(path, f"{step!r} is not a step of pipeline {pipe.name}", _suggest(step, outputs))
        elif tensor not in outputs[step]:
            yield Problem(path, f"step {step!r} has no output {tensor!r}", _suggest(tensor, outputs[step]))
    if len(set(pipe.outputs)) != len(pipe.outputs):
        yield Problem(("serving", "pipeline", "outputs"), "a tensor is returned twice")


_UNIT_INTERVAL = {"roc_auc", "accuracy", "f1", "precision", "recall"}
_ERRORS = {"log_loss", "rmse", "mae"}


def _check_quality(spec: Spec) -> Iterator[Problem]:
    quality = spec.training.min_quality
    if quality is None:
        return
    path: Path = ("training", "min_quality", "threshold")
    if quality.metric in _UNIT_INTERVAL and not 0 <= quality.threshold <= 1:
        yield Problem(path, f"{quality.metric} lies between 0 and 1; {quality.threshold} can never be met")
    elif quality.metric in _ERRORS and quality.threshold < 0:
        yield Problem(path, f"{quality.metric} is an error, never below 0; use a positive bound")
    elif quality.metric == "r2" and quality.threshold > 1:
        yield Problem(path, f"r2 is at most 1; {quality.threshold} can never be met")


def _check_ref(ref: str, known: dict[str, set[str]], path: Path) -> Iterator[Problem]:
    view, _, field = ref.partition(".")
    if view not in known:
        yield Problem(path, f"unknown feature view {view!r} in {ref!r}", _suggest(view, known))
    elif field not in known[view]:
        yield Problem(path, f"view {view!r} has no field {field!r}", _suggest(field, known[view]))
