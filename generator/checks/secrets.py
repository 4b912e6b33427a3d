"""Credentials stay out of the repository, and every Secret a workload reads is declared (``check.secrets``).

A generated repository never holds a credential: Kubernetes workloads read theirs from Secrets
(``secretKeyRef``, ``secretRef``) created out of band from each overlay's ``secrets.env`` (its template,
``secrets.env.example``, names every key), docker compose and ``feature_store.yaml`` read ``${VAR}`` from
an environment file git ignores (its template: ``deploy/env/<env>.env.example``), and the committed
``*.example`` files hold ``change-me`` placeholders only. ``archgen check`` holds a repository to that, at
the file and line, with the fix; it reads the files and never runs them, and never shows a value it flags:

- plain text: a literal value under a credential's name (a container's ``env``, a compose service's
  ``environment``, a key of ``feature_store.yaml``), a URL or connection string with a literal password, a
  committed Secret manifest with its values, an environment file git would commit (an ``*.example`` holding
  a real value, an env file no ``.gitignore`` covers);
- undeclared: a ``secretKeyRef`` / ``secretRef`` / secret volume whose Secret and key an environment's
  ``secrets.env.example`` (or a Secret manifest) does not declare, a compose ``${VAR}`` without a default
  or a ``feature_store.yaml`` ``${VAR}`` that an environment's env example does not define.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import untrusted
from ..errors import Diagnostic, Location

CODE = "check.secrets"
COMPOSE_FILE = "deploy/docker-compose.yaml"
FEATURE_STORE_YAML = "feature_repo/feature_store.yaml"
OVERLAYS = "deploy/k8s/overlays"
ENV_EXAMPLES = "deploy/env"
# the YAML files a credential could be written into: manifests, compose, schedulers' configs, Feast's config
YAML_FOLDERS = ("deploy", "pipelines", "batch")
#: the name of a variable or key that holds a credential
CREDENTIAL = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ADMIN_KEY|ACCESS_KEY|PRIVATE_KEY|ENCRYPTION_KEY|CREDENTIAL|SALT)",
    re.IGNORECASE,
)
URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@")
PARAM_PASSWORD = re.compile(r"(?:^|[,;?&\s])(?:password|passwd|pwd)=([^,;&\s\"']+)", re.IGNORECASE)
# ${VAR}, ${VAR:?message}, ${VAR?message}: required; ${VAR:-default} and ${VAR-default} are not ($$ escapes)
COMPOSE_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+][^}]*)?\}")
ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
CREATE_SECRET = re.compile(r"create secret generic\s+([a-z0-9][a-z0-9.-]*)")
FROM_LITERAL = re.compile(r"--from-literal=([A-Za-z0-9_.-]+)=")
PLACEHOLDER = "change-me"
IGNORED_DIRS = {".git", ".venv", ".venv-triton", ".venv-security", "venv", "__pycache__", "node_modules", ".run"}


def is_reference(value: str) -> bool:
    """A value read from elsewhere when the file is used: ``${VAR}``, ``$VAR`` or Kubernetes' ``$(VAR)``."""
    return bool(re.search(r"\$\{|\$\(|\$[A-Za-z_]", value))


def literal(value: str) -> bool:
    """A value written into the file itself (not empty, not a reference)."""
    return bool(value.strip()) and not is_reference(value)


@dataclass
class Ref:
    """A workload's reference to a Secret (``key`` None: the whole Secret) at a file and line."""

    secret: str
    key: str | None
    file: str
    line: int


@dataclass
class Scan:
    """What the files hold: the problems found, and the references and declarations to match."""

    root: Path
    found: dict[tuple[str, int, str], Diagnostic] = field(default_factory=dict)
    refs: list[Ref] = field(default_factory=list)
    declared_anywhere: dict[str, set[str]] = field(default_factory=dict)  # Secret manifests: name -> keys
    compose_refs: list[tuple[str, int]] = field(default_factory=list)  # (variable, line)
    compose_sets: set[str] = field(default_factory=set)  # variables the compose file sets itself
    feast_refs: list[tuple[str, int]] = field(default_factory=list)

    def error(self, file: str, line: int, message: str, hint: str) -> None:
        """One problem (an alias visited twice reports once)."""
        self.found.setdefault(
            (file, line, message), Diagnostic(CODE, message, Location(file, line), "error", untrusted.escape(hint))
        )


# ------------------------------------------------------------------ reading
def _files(root: Path, folders: tuple[str, ...]) -> Iterator[str]:
    for folder in folders:
        base = root / folder
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
            for name in sorted(filenames):
                yield (Path(dirpath) / name).relative_to(root).as_posix()


def _text(root: Path, rel: str) -> str | None:
    if untrusted.check_inside(root, rel, names=False):
        return None
    try:
        return untrusted.read_text(root / rel)
    except (OSError, ValueError):
        return None


def _nodes(text: str) -> list[yaml.Node]:
    try:
        return untrusted.compose_yaml_all(text)
    except (yaml.YAMLError, ValueError):  # the YAML checks report it
        return []


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _items(node: yaml.Node | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's scalar keys -> (key node, value node); nothing for another node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a mapping node (None: not there, or not a mapping)."""
    found = _items(node).get(key)
    return found[1] if found else None


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _walk(node: yaml.Node, seen: set[int] | None = None) -> Iterator[yaml.Node]:
    """Every node once (an alias's node is shared: visited the first time only)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    yield node
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _walk(k, seen)
            yield from _walk(v, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item, seen)


# ------------------------------------------------------------------ plain text
def _embedded_passwords(scan: Scan, rel: str, nodes: list[yaml.Node]) -> None:
    """Any string with a URL's or a connection string's password written out."""
    for doc in nodes:
        for node in _walk(doc):
            value = _scalar(node)
            if value is None:
                continue
            for pattern in (URL_PASSWORD, PARAM_PASSWORD):
                for m in pattern.finditer(value):
                    if literal(m.group(1)):
                        scan.error(
                            rel,
                            _line(node),
                            "a password written into a URL or connection string",
                            "build it from a reference (${VAR} for compose and Feast, $(VAR) in a manifest "
                            "with VAR from a Secret) and keep the value in the environment's secret file",
                        )


def _credential_value(scan: Scan, rel: str, name: str, value: yaml.Node, fix: str) -> None:
    text = _scalar(value)
    if text is not None and CREDENTIAL.search(name) and literal(text):
        scan.error(rel, _line(value), f"{untrusted.escape(name)}: a credential written in plain text", fix)


def _kubernetes(scan: Scan, rel: str, doc: yaml.Node, secret_names: set[str]) -> None:
    """A manifest: literal env values of credentials, committed Secrets, and the Secret references."""
    if _scalar(_get(doc, "kind")) == "Secret":
        name = _scalar(_get(_get(doc, "metadata"), "name")) or ""
        for section in ("data", "stringData"):
            values = _items(_get(doc, section))
            scan.declared_anywhere.setdefault(name, set()).update(values)
            for key, (key_node, value) in values.items():
                if literal(_scalar(value) or ""):
                    scan.error(
                        rel,
                        _line(key_node),
                        f"Secret {untrusted.escape(name)}: {untrusted.escape(key)} committed with its value",
                        "remove the Secret from the repository and create it out of band (kubectl create secret "
                        "generic --from-env-file=secrets.env, or your secret manager); list the key in "
                        "secrets.env.example",
                    )
    for node in _walk(doc):
        for field_name, key_field in (("secretKeyRef", "key"), ("secretRef", ""), ("secret", "")):
            ref = _get(node, field_name)
            if ref is None:
                continue
            name_field = "secretName" if field_name == "secret" else "name"  # a volume names its Secret so
            secret = _scalar(_get(ref, name_field))
            if secret is not None and _scalar(_get(ref, "optional")) != "true":  # an optional one may be absent
                scan.refs.append(Ref(secret, _scalar(_get(ref, key_field)) if key_field else None, rel, _line(ref)))
        env_name, env_value = _scalar(_get(node, "name")), _scalar(_get(node, "value"))
        if env_name and literal(env_value or "") and (CREDENTIAL.search(env_name) or env_name in secret_names):
            scan.error(
                rel,
                _line(_get(node, "value") or node),
                f"env {untrusted.escape(env_name)}: a credential written in plain text",
                f"read it from the Secret: valueFrom.secretKeyRef with key {env_name}, and list {env_name} in "
                "every overlay's secrets.env.example",
            )


def _compose(scan: Scan, rel: str, doc: yaml.Node) -> None:
    """docker compose: literal credentials in an environment, and the variables it needs from the env file."""
    fix = "write ${{{name}}} and set {name} in the environment's env file (deploy/env/<env>.env, git-ignored)"
    environments: list[yaml.Node | None] = [v for k, (_, v) in _items(doc).items() if k.startswith("x-")]  # anchors
    environments += [_get(service, "environment") for _, service in _items(_get(doc, "services")).values()]
    for env in environments:
        if isinstance(env, yaml.MappingNode):
            for name, (_, value) in _items(env).items():
                scan.compose_sets.add(name)
                _credential_value(scan, rel, name, value, fix.format(name=name))
        elif isinstance(env, yaml.SequenceNode):
            for item in env.value:
                name, sep, text = (_scalar(item) or "").partition("=")
                scan.compose_sets.add(name)
                if sep and CREDENTIAL.search(name) and literal(text):
                    scan.error(
                        rel,
                        _line(item),
                        f"{untrusted.escape(name)}: a credential written in plain text",
                        fix.format(name=name),
                    )
    for node in _walk(doc):
        for m in COMPOSE_REF.finditer(_scalar(node) or ""):
            if not m.group(2) or m.group(2).lstrip(":").startswith("?"):
                scan.compose_refs.append((m.group(1), _line(node)))


def _feature_store(scan: Scan, rel: str, doc: yaml.Node) -> None:
    """feature_store.yaml: a credential written under its key, and the variables Feast expands."""
    for node in _walk(doc):
        for name, (_, value) in _items(node).items():
            _credential_value(
                scan,
                rel,
                name,
                value,
                'write "${VAR}" (Feast expands it when it loads the file) and define VAR in the env file',
            )
        for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", _scalar(node) or ""):
            scan.feast_refs.append((m.group(1), _line(node)))


# ------------------------------------------------------------------ environment files
def _env_lines(text: str) -> Iterator[tuple[int, str, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        m = ENV_LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            yield number, m.group(1), m.group(2).strip().strip("\"'")


def _ignored(root: Path, rel: str) -> bool:
    """Whether a .gitignore of the repository (the root's or a folder's on the way) covers ``rel``."""
    parts = rel.split("/")
    for depth in range(len(parts)):
        base = "/".join(parts[:depth])
        text = _text(root, f"{base}/.gitignore" if base else ".gitignore")
        below = parts[depth:]
        for raw in (text or "").splitlines():
            pattern = raw.strip()
            if not pattern or pattern.startswith(("#", "!")):
                continue
            folder_only = pattern.endswith("/")
            pattern = pattern.rstrip("/")
            anchored = "/" in pattern
            wanted = pattern.lstrip("/").split("/")
            # the path itself, or (a folder pattern) one of its folders
            ends = range(1, len(below)) if folder_only else range(1, len(below) + 1)
            for end in ends:
                segs = below[:end]
                if anchored:
                    hit = len(segs) == len(wanted) and all(
                        fnmatch.fnmatchcase(s, w) for s, w in zip(segs, wanted, strict=True)
                    )
                else:
                    hit = fnmatch.fnmatchcase(segs[-1], wanted[0])
                if hit:
                    return True
    return False


def _env_file(name: str) -> bool:
    return name == ".env" or name.endswith((".env", ".env.example")) or name.startswith(".env.")


def _env_files(scan: Scan, secret_names: set[str]) -> None:
    """Committed templates hold placeholders only; a real env file must be one git ignores."""
    root = scan.root
    candidates = [rel for rel in _files(root, YAML_FOLDERS) if _env_file(rel.rsplit("/", 1)[-1])]
    candidates += [name for name in (".env", ".env.example") if (root / name).is_file()]
    for rel in candidates:
        text = _text(root, rel)
        if text is None:
            continue
        example = rel.endswith(".example")
        if not example and _ignored(root, rel):
            continue  # the real file, kept out of git: where the values belong
        for number, name, value in _env_lines(text):
            credential = bool(CREDENTIAL.search(name)) or name in secret_names
            embedded = any(literal(m.group(1)) for p in (URL_PASSWORD, PARAM_PASSWORD) for m in p.finditer(value))
            if not (credential and literal(value)) and not embedded:
                continue
            if example and PLACEHOLDER in value:
                continue
            if example:
                scan.error(
                    rel,
                    number,
                    f"{untrusted.escape(name)}: a real value in a committed template",
                    f"write {name}=change-me-... here; the value goes into {rel.removesuffix('.example')}, "
                    "which git ignores",
                )
            else:
                scan.error(
                    rel,
                    number,
                    f"{untrusted.escape(name)}: a credential in a file git would commit",
                    "ignore the file in .gitignore (deploy/.gitignore ignores env/*.env and overlays' secrets.env) "
                    "and commit only its .example with change-me placeholders",
                )


def _declared_secrets(text: str) -> dict[str, set[str]]:
    """What an overlay's secrets.env.example declares: the Secrets its instructions create and their keys."""
    keys = {name for _, name, _ in _env_lines(text)}
    out: dict[str, set[str]] = {}
    starts = list(CREATE_SECRET.finditer(text))
    for i, m in enumerate(starts):
        block = text[m.end() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        declared = out.setdefault(m.group(1), set())
        declared.update(FROM_LITERAL.findall(block))
        if re.match(r"\s*--from-env-file=secrets\.env\b", block):
            declared.update(keys)
    return out


# ------------------------------------------------------------------ undeclared references
def _undeclared(scan: Scan) -> None:
    root = scan.root
    overlays = root / OVERLAYS
    environments: dict[str, tuple[str, dict[str, set[str]]]] = {}
    for folder in sorted(overlays.iterdir()) if overlays.is_dir() and not overlays.is_symlink() else []:
        rel = f"{OVERLAYS}/{folder.name}/secrets.env.example"
        text = _text(root, rel) if (root / rel).is_file() else None
        if text is not None:
            environments[folder.name] = (rel, _declared_secrets(text))
    for ref in scan.refs:
        own = ref.file.removeprefix(f"{OVERLAYS}/").split("/", 1)[0] if ref.file.startswith(OVERLAYS) else None
        wanted = {e: v for e, v in environments.items() if own is None or e == own}
        known = scan.declared_anywhere.get(ref.secret)
        if known is not None and (ref.key is None or ref.key in known):
            continue
        lacking = [
            rel
            for rel, declared in wanted.values()
            if ref.secret not in declared or (ref.key is not None and ref.key not in declared[ref.secret])
        ]
        if wanted and not lacking:
            continue
        what = f"key {ref.key} of Secret {ref.secret}" if ref.key else f"Secret {ref.secret}"
        where = ", ".join(lacking) if lacking else "no secrets.env.example or Secret manifest"
        scan.error(
            ref.file,
            ref.line,
            f"reads {untrusted.escape(what)}, which {untrusted.escape(where)} does not declare",
            f"add {ref.key or 'its keys'}=change-me-... to each overlay's secrets.env.example (and the real "
            f"secrets.env the Secret is created from), or refer to a key {ref.secret} has",
        )
    examples = {}
    folder = root / ENV_EXAMPLES
    for path in sorted(folder.glob("*.env.example")) if folder.is_dir() and not folder.is_symlink() else []:
        rel = f"{ENV_EXAMPLES}/{path.name}"
        text = _text(root, rel)
        if text is not None:
            examples[rel] = {name for _, name, _ in _env_lines(text)}
    if not examples:
        return
    for file, refs, extra in (
        (COMPOSE_FILE, scan.compose_refs, set()),
        (FEATURE_STORE_YAML, scan.feast_refs, scan.compose_sets),  # compose sets derived ones (a connection string)
    ):
        for name, line in refs:
            lacking = [rel for rel, names in examples.items() if name not in names | extra]
            if lacking:
                scan.error(
                    file,
                    line,
                    f"reads ${{{untrusted.escape(name)}}}, which {', '.join(lacking)} does not define",
                    f"add {name}=... (change-me-... for a secret) to every deploy/env/<env>.env.example, "
                    "or refer to a variable they define",
                )


# ------------------------------------------------------------------ the check
def check_secrets(root: Path) -> list[Diagnostic]:
    """Every plain-text credential and undeclared secret reference of the repository at ``root``."""
    scan = Scan(root)
    secret_names: set[str] = set()
    overlays = root / OVERLAYS
    for path in sorted(overlays.glob("*/secrets.env.example")) if overlays.is_dir() else []:
        text = _text(root, path.relative_to(root).as_posix())
        secret_names |= {name for _, name, _ in _env_lines(text or "")}
    yaml_files = [r for r in _files(root, YAML_FOLDERS) if r.endswith((".yaml", ".yml"))]
    if (root / FEATURE_STORE_YAML).is_file():
        yaml_files.append(FEATURE_STORE_YAML)
    for rel in yaml_files:
        text = _text(root, rel)
        if text is None:
            continue
        nodes = _nodes(text)
        _embedded_passwords(scan, rel, nodes)
        for doc in nodes:
            if rel == COMPOSE_FILE:
                _compose(scan, rel, doc)
            elif rel == FEATURE_STORE_YAML:
                _feature_store(scan, rel, doc)
            elif {"kind", "apiVersion"} <= set(_items(doc)):
                _kubernetes(scan, rel, doc, secret_names)
    _env_files(scan, secret_names)
    _undeclared(scan)
    return sorted(scan.found.values(), key=lambda d: (d.file, d.line, d.message))
