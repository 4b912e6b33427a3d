"""The frame of the generated repository: README, Makefile, pinned requirements, CODEOWNERS,
.gitignore and the tests/ folder.

Plain Jinja (through :mod:`generator.render.render`) rather than cookiecutter's ``generate_files``, on
purpose: cookiecutter renders file and folder *names* through Jinja, renders context values as
Jinja source (``prompt.render_variable``), writes straight to disk after ``chdir`` with no check
that paths stay inside the output, and its ``StrictEnvironment`` loads the ``time``/``random``/
``uuid`` extensions that defeat byte-identical output. Here which files exist is decided from the
architecture, user values stay data (escaped by the ``toml``/``yaml``/``py``/``sh`` filters) and
writing is left to :mod:`generator.write.write`. ``bench/bench_generate.py`` keeps cookiecutter as the
speed yardstick.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..decide.architecture import Architecture
from ..decide.pipeline_shapes import demo_context
from .model_repository import triton_served
from .plan import PlannedFile
from .serving import worker_broker

FEAST_VERSION = "0.67.0"
# Feast extras per store choice (feast[...] in requirements.txt)
ONLINE_EXTRAS = {"sqlite": "", "redis": "redis", "postgres": "postgres"}
OFFLINE_EXTRAS = {
    "file": "",
    "duckdb": "duckdb",
    "postgres": "postgres",
    "bigquery": "gcp",
    "snowflake": "snowflake",
    "redshift": "aws",
    "spark": "spark",
}
PINS_COMMON = ("numpy>=2,<3", "scikit-learn==1.9.1")
PINS_CLIENT = ("tritonclient[grpc,http]==2.73.0", "protobuf>=6.33.5,<7")
PINS_REST = ("fastapi==0.165.0", "uvicorn==0.54.0")  # runtime python_rest: the versions feast 0.67 resolves
PINS_TEST = ("pytest==9.2.0", "croniter==7.0.0")  # croniter: the fitness tests read schedules as cron does
PINS_ONNX = ("skl2onnx==1.20.0", "onnx==1.23.2", "onnxruntime==1.32.0")
PYSPARK = "pyspark==4.0.5"  # feast[spark] asks for pyspark>=4; the version the tests ran with (Java 17)
# broker client libraries, (pin, module it is imported as): of online training (training/online.py) and of
# the async serving worker (serving/worker.py); the versions the tests ran with
PIKA, REDIS = ("pika==1.4.4", "pika"), ("redis==7.4.1", "redis")
ONLINE_BROKER_CLIENT = {"rabbitmq": PIKA, "redis": REDIS, "kafka": ("confluent-kafka==2.16.1", "confluent_kafka")}
WORKER_BROKER_CLIENT = {"rabbitmq": PIKA, "redis": REDIS, "kafka": ("kafka-python==3.0.12", "kafka")}
# broker variables training/online.py reads, with its local defaults
ONLINE_BROKER_ENV = {
    "rabbitmq": ("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", "RabbitMQ the online trainer consumes"),
    "redis": ("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis whose stream the online trainer consumes"),
    "kafka": ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka brokers the online trainer consumes"),
}
PINS_TRITON = ("nvidia-pytriton==0.7.0", "numpy==1.26.4", "scikit-learn==1.9.1")
# the local stand-in of a trained onnx model runs its model.onnx in process where the Triton build has no
# onnxruntime backend; 1.22.1 is the newest that runs on numpy 1.26
PIN_TRITON_ONNX = "onnxruntime==1.22.1"
# the client batch/score.py writes the scores with, per warehouse (Feast's own bounds: its extras bring them too)
SCORE_CLIENTS = {
    "bigquery": "google-cloud-bigquery[pandas]>=3,<4",
    "snowflake": "snowflake-connector-python[pandas]>=3.7,<5",
    "redshift": "boto3>=1.38.27",
}
# `make demo` alone encrypts its synthetic sample data with this Fernet key when the real one is unset (the
# urlsafe base64 of 32 bytes that say what it is); every other target takes the key from the secret store
DEMO_PII_KEY = "ZGVtby1vbmx5LWtleS1mb3ItdGhlLXNhbXBsZS1kYXQ="
PIN_CRYPTO = "cryptography==50.0.2"  # privacy.pii_handling encrypt: Fernet (scripts/protect_pii.py)


def feast_requirement(arch: Architecture) -> str | None:
    """The Feast requirement with the extras the decided stores need (None without a feature store)."""
    fs = arch.feature_store
    if fs is None:
        return None
    extras = {ONLINE_EXTRAS[fs.online_store or "sqlite"], OFFLINE_EXTRAS[fs.offline_store]}
    if fs.compute_engine == "spark":
        extras.add("spark")  # the rollups run on Spark, whatever the offline store
    if fs.registry == "sql":
        extras.add("postgres")  # the SQL registry lives in PostgreSQL (psycopg)
    from .feature_repo import feast_auth

    if feast_auth(arch) == "kubernetes":
        extras.add("k8s")  # the feature server's Kubernetes authorization (the kubernetes client)
    extras.discard("")
    return f"feast[{','.join(sorted(extras))}]=={FEAST_VERSION}" if extras else f"feast=={FEAST_VERSION}"


def requirements(arch: Architecture) -> list[str]:
    """The main environment (Feast, training, the serving client, tests), pinned."""
    feast = feast_requirement(arch)
    pins = ([feast] if feast else []) + list(PINS_COMMON)
    if arch.uses_spark:
        pins.append(PYSPARK)
    if triton_served(arch):  # the serving client (and batch scoring or the async worker) call Triton
        pins += list(PINS_CLIENT)
    if arch.rest_app_serves:
        pins += list(PINS_REST)
    if _trains_onnx(arch):
        pins += list(PINS_ONNX)  # training exports model.onnx and checks it against the trained model
    if arch.feature_store is not None and arch.feature_store.encrypted_fields:
        pins.append(PIN_CRYPTO)
    if arch.serving.runtime == "batch_scoring":
        from .batch import score_store

        client = SCORE_CLIENTS.get(score_store(arch)[1])
        pins += [client] if client else []
    return pins + [pin for pin, _ in broker_clients(arch)] + list(PINS_TEST)


def _trains_onnx(arch: Architecture) -> bool:
    """A model served by onnxruntime is trained here (training exports model.onnx)."""
    return any(m.backend == "onnxruntime" and m.name in arch.training.trained_models for m in arch.serving.models)


def broker_clients(arch: Architecture) -> list[tuple[str, str]]:
    """(pin, module) of the broker clients of online training and the async worker (feast[redis] brings redis)."""
    wanted = [ONLINE_BROKER_CLIENT.get(online_broker(arch) or ""), WORKER_BROKER_CLIENT.get(worker_broker(arch) or "")]
    clients = [c for c in dict.fromkeys(wanted) if c is not None]
    feast = feast_requirement(arch)
    return [c for c in clients if not (c == REDIS and feast and "redis" in feast)]


def online_broker(arch: Architecture) -> str | None:
    """The broker training/online.py consumes, or None when training is not online."""
    if arch.training.mode != "online" or not arch.training.trained_models:
        return None
    return arch.training.consumer_broker or "rabbitmq"


def make_environment(arch: Architecture) -> tuple[list[dict[str, str]], list[str]]:
    """(variables the Makefile exports with a local default, variables it leaves to the environment).

    Only local-development defaults without credentials are written; a variable with no local default
    (a secret, a cloud warehouse's account) stays unset, so Feast's ``${VAR}`` fails loudly instead of
    silently reading an empty value.
    """
    from . import feature_repo

    defaults: list[dict[str, str]] = []
    unset: list[str] = []
    for v in feature_repo.env_vars(arch):
        if v.default:
            note = " (secret outside local development)" if v.secret else ""
            defaults.append({"name": v.name, "default": _make_value(v.default), "doc": v.description + note})
        else:
            unset.append(v.name)
    broker = online_broker(arch)
    if broker is not None:
        from .training import training_settings

        name, default, doc = ONLINE_BROKER_ENV[broker]
        defaults.append({"name": name, "default": _make_value(default), "doc": doc})
        topic = _make_value(str(training_settings(arch)["topic"]))
        defaults.append({"name": "TRAINING_TOPIC", "default": topic, "doc": "topic or queue of the labelled events"})
    return defaults, unset


def predict_example(arch: Architecture) -> str:
    """PREDICT_ARGS for two of the sample entities (scripts/generate_sample_data.py writes their ids)."""
    if not arch.serving.models:
        return ""
    from .serving import client_context

    keys = client_context(arch)["entity_keys"]
    if not keys:
        return "--input NAME=FILE.npy" if triton_served(arch) else ""
    # embedded: every join key of two sample entities (the sample data pairs the i-th ids); a client: the first
    paired = keys if arch.serving.runtime == "embedded" else keys[:1]
    args = []
    for i in (1, 2):
        for join_key, dtype in paired:
            entity = next((e.name for e in arch.spec.entities if e.join_key == join_key), join_key)
            args.append(f"--{join_key} {1000 + i if dtype.startswith('int') else f'{entity}_{i:04d}'}")
    return " ".join(args)


def _make_value(value: str) -> str:
    """A value on the right of a Makefile assignment: `$` and `#` kept literal."""
    return value.replace("$", "$$").replace("#", "\\#")


def _decisions(arch: Architecture, *keys: str) -> tuple[str, ...]:
    known = {d.key for d in arch.decisions}
    return tuple(k for k in keys if k in known)


def context(arch: Architecture) -> dict[str, Any]:
    """The template context of the repository's frame."""
    from .feature_repo import prerequisites

    spec = arch.spec
    owners = spec.project.owners
    has_triton = triton_served(arch)  # every runtime but python_rest: batch scoring and workers call Triton too
    setup_modules = (["feast"] if arch.feature_store else []) + ["sklearn", "pytest"]
    if has_triton:
        setup_modules.append("tritonclient")
    if arch.rest_app_serves:
        setup_modules += ["fastapi", "uvicorn"]
    setup_modules += [module for _, module in broker_clients(arch)]
    make_env, make_env_unset = make_environment(arch)
    return {
        "archgen_version": __version__,
        "project": spec.project.name,
        "description": spec.project.description,
        "owners": owners,
        "all_owners": sorted(
            {owners.data_engineering, owners.data_science} | ({owners.platform} if owners.platform else set())
        ),
        "has_feature_store": arch.feature_store is not None,
        "materialized": arch.feature_store is not None and arch.feature_store.materialization_cron is not None,
        # views with aggregations read rollups: scripts/aggregate.py writes them before the definitions apply
        "has_rollups": arch.feature_store is not None and bool(arch.feature_store.aggregated_views),
        "joins_catalog": arch.feature_store is not None and bool(arch.feature_store.catalog_views),
        "has_training": bool(arch.training.trained_models),
        "external_weights": all(m.training == "external" for m in arch.spec.serving.models),
        "has_triton": has_triton,
        "has_rest_app": arch.rest_app_serves,
        "worker_broker": worker_broker(arch),  # serving/worker.py
        "online_broker": online_broker(arch),
        "predict_example": predict_example(arch),
        "pipeline_demo": demo_context(arch) is not None,
        "has_prerequisites": any(prerequisites(arch).values()),
        "make_env": make_env,
        "make_env_unset": make_env_unset,
        "demo_salt": "PII_HASH_SALT" if arch.feature_store and arch.feature_store.hashed_fields else None,
        "demo_key": arch.privacy.pii_key_env if arch.feature_store and arch.feature_store.encrypted_fields else None,
        "demo_key_value": DEMO_PII_KEY,
        "requirements": requirements(arch),
        "triton_requirements": list(PINS_TRITON) + ([PIN_TRITON_ONNX] if _trains_onnx(arch) else []),
        "setup_modules": setup_modules,
        **runtime_make(arch),
        "offline": offline(arch),
        "view_names": [v.name for v in spec.features.views] if spec.features else [],
        "service_names": [s.name for s in spec.features.services] if spec.features else [],
    }


def offline(arch: Architecture) -> dict[str, Any] | None:
    """An air-gapped system's delivery: the site's mirror, the requirement files to bundle, the images to carry in."""
    mirror = arch.spec.existing.package_mirror
    if arch.spec.autonomy != "air_gapped" or mirror is None:
        return None
    from .deploy import images

    files = ["requirements.txt", *(["requirements-triton.txt"] if triton_served(arch) else [])]
    return {
        "package_mirror": mirror,
        "registry": arch.spec.existing.image_registry or "",
        "images": images(arch),
        "requirement_files": [*files, "requirements-security.txt"],
    }


def runtime_make(arch: Architecture) -> dict[str, Any]:
    """The Makefile part of the embedded and batch runtimes (templates/embedded/, templates/batch/)."""
    if arch.serving.runtime == "batch_scoring" and arch.spec.serving.models[0].feature_service:
        return {
            "runtime_make": "batch/Makefile.part.j2",
            "runtime_targets": ["score"],
            "runtime_help": [
                "make score        score every entity of the population into the warehouse (batch/score.py)",
            ],
            "runtime_demo": "data apply train score",
            # batch reads the rollups as of each run: `make train` recomputes them first, as the pipeline does
            "rollups_before_train": arch.feature_store is not None and bool(arch.feature_store.aggregated_views),
        }
    from .embedded import embedded_runtime, embedded_tensor_runtime, on_demand

    if embedded_runtime(arch):
        request = on_demand(arch, arch.spec.serving.models[0].feature_service or "")["request"]
        return {
            "request_fields": [r["name"] for r in request],  # request-time values make predict sends
            "runtime_make": "embedded/Makefile.part.j2",
            "runtime_targets": ["bundle", "package", "install-bundle"],
            "runtime_help": [
                "make bundle       the model + a SQLite snapshot of the online features + manifest (dist/bundles/)",
                "make package      the prediction library as a wheel (dist/)",
                "make install-bundle  install the newest bundle where the library reads it (BUNDLE_DIR)",
                "make predict      one prediction from the library, in process (PREDICT_ARGS)",
            ],
            "runtime_demo": "data apply materialize train bundle package install-bundle predict",
            "bundle_var": f"{arch.spec.project.name.upper()}_BUNDLE_DIR",
            "rollups_before_train": False,  # training follows materialization, which recomputes the rollups
        }
    if embedded_tensor_runtime(arch):  # a model that reads no features: the package alone
        return {
            "request_fields": [],
            "runtime_make": "embedded/Makefile.part.j2",
            "runtime_targets": ["package"],
            "runtime_help": [
                "make package      the prediction library as a wheel (dist/)",
                "make predict      one prediction from the library, in process, on a sample of each input",
            ],
            "runtime_demo": "package predict",
            "bundle_var": "",
            "rollups_before_train": False,
        }
    return {
        "runtime_make": None,
        "runtime_targets": [],
        "runtime_help": [],
        "runtime_demo": None,
        "rollups_before_train": False,
    }


def plan(arch: Architecture) -> list[PlannedFile]:
    """The frame: README, Makefile, pyproject, CODEOWNERS, CI and the other top-level files."""
    ctx = context(arch)
    run_keys = _decisions(
        arch, "online_store", "offline_store", "registry", "scheduler", "serving_runtime", "protocol", "deployment"
    )
    files = [
        PlannedFile("README.md", "frame", template="frame/README.md.j2", context=ctx, decisions=run_keys),
        PlannedFile(
            "Makefile",
            "frame",
            template="frame/Makefile.j2",
            context=ctx,
            decisions=_decisions(arch, "online_store", "serving_runtime", "training_mode"),
        ),
        PlannedFile(
            "pyproject.toml",
            "frame",
            template="frame/pyproject.toml.j2",
            context=ctx,
            decisions=_decisions(arch, "online_store", "offline_store", "registry", "serving_runtime"),
        ),
        PlannedFile(
            "requirements.txt",
            "frame",
            template="frame/requirements.txt.j2",
            context=ctx,
            decisions=_decisions(arch, "online_store", "offline_store", "registry", "serving_runtime", "training_mode"),
        ),
        PlannedFile("CODEOWNERS", "frame", template="frame/CODEOWNERS.j2", context=ctx),
        PlannedFile(".gitignore", "frame", template="frame/gitignore.j2", context=ctx),
        PlannedFile("tests/conftest.py", "frame", template="frame/tests/conftest.py.j2", context=ctx),
    ]
    if ctx["offline"] is not None:
        files.append(
            PlannedFile(
                "scripts/offline_bundle.py",
                "frame",
                template="scripts/offline_bundle.py.j2",
                context={**ctx, **ctx["offline"]},
                executable=True,
                decisions=_decisions(arch, "residency"),
            )
        )
    if ctx["has_triton"]:
        files.append(
            PlannedFile(
                "requirements-triton.txt",
                "frame",
                template="frame/requirements-triton.txt.j2",
                context=ctx,
                decisions=_decisions(arch, "serving_runtime"),
            )
        )
    return files
