"""Constrained scalar types of the spec language: names, durations, cron expressions."""

from __future__ import annotations

import keyword
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StrictFloat, StrictStr

# A name becomes a file name, a Python identifier, a Feast object name and a Triton model
# name, so it has to be safe for all of them at once.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_NAME = re.compile(NAME_PATTERN)
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
# names that would shadow what generated code imports
_SHADOWING = {
    "feast",
    "numpy",
    "pandas",
    "tritonclient",
    "triton_python_backend_utils",
    "test",
    "tests",
    "self",
    "model",
    "config",
    "datetime",
    "typing",
}


def check_name(value: str) -> str:
    """``value`` if it is a valid name (lowercase letters, digits, '_'; no keyword, no reserved name)."""
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits and '_', starting with a letter "
            "(at most 63 characters)"
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise ValueError(f"{value!r} is a Python keyword; generated code could not use it as a name")
    if value in _RESERVED:
        raise ValueError(f"{value!r} is a reserved device name on Windows; pick another name")
    if value in _SHADOWING:
        raise ValueError(f"{value!r} would shadow a module the generated code imports; pick another name")
    if value.startswith("_") or "__" in value:
        raise ValueError(f"{value!r}: names may not contain '__' (Feast uses it to join names)")
    return value


Name = Annotated[StrictStr, AfterValidator(check_name), Field(json_schema_extra={"pattern": NAME_PATTERN})]

TENSOR_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
TensorName = Annotated[StrictStr, Field(pattern=TENSOR_PATTERN)]

TABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
TableName = Annotated[StrictStr, Field(pattern=TABLE_PATTERN)]

# a container registry (host[:port][/path]) and a package index URL: written into Dockerfiles, manifests and
# the Makefile, so no quote, space or shell character
REGISTRY_PATTERN = r"^[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?){0,8}$"
Registry = Annotated[StrictStr, Field(pattern=REGISTRY_PATTERN)]
INDEX_URL_PATTERN = r"^(https?|file)://[A-Za-z0-9._~:/?#@!&+,;=%-]{1,2000}$"
IndexUrl = Annotated[StrictStr, Field(pattern=INDEX_URL_PATTERN)]
TOPIC_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,248}$"
Topic = Annotated[StrictStr, Field(pattern=TOPIC_PATTERN)]

OWNER_PATTERN = r"^(@[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?|[A-Za-z0-9_.+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"
Owner = Annotated[StrictStr, Field(pattern=OWNER_PATTERN)]

_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def check_relative_path(value: str) -> str:
    """``value`` if it is a relative path inside its folder, else ValueError."""
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"{value!r}: path parts may use letters, digits, '_', '-' and '.' (ASCII, printable)")
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or ":" in value:
        raise ValueError(f"{value!r} must be a relative path inside the feature repo (no drive, no leading '/')")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"{value!r} must not contain empty, '.' or '..' parts")
        if not _PATH_PART.fullmatch(part) or part.endswith("."):
            raise ValueError(f"{value!r}: path parts may use letters, digits, '_', '-' and '.'")
    if len(value) > 200:
        raise ValueError("path longer than 200 characters")
    return value


RelativePath = Annotated[StrictStr, AfterValidator(check_relative_path)]

# free text (descriptions): anything printable; emitted verbatim, never used as template source.
# C0/C1 controls are refused, and so are the line breaks only some tools know (NEL, U+2028, U+2029:
# YAML breaks lines at them, Python does not), so a description cannot start a new line in a
# generated YAML file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]*$"


def check_text(value: str) -> str:
    """``value`` if it is free text without control characters, else ValueError."""
    bad = _CONTROL.search(value)
    if bad:
        raise ValueError(f"control character {bad.group()!r} at position {bad.start()}; write plain text")
    return value


Text = Annotated[
    StrictStr, Field(max_length=2000, json_schema_extra={"pattern": TEXT_PATTERN}), AfterValidator(check_text)
]


def reject_bool(value: object) -> object:
    """YAML's ``true`` is not the number 1 (pydantic would accept it for ``Literal[1]``)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got boolean {str(value).lower()}")
    return value


NotBool = BeforeValidator(reject_bool)

# a float that is a real number: `.inf` and `.nan` are YAML floats but no sensible requirement
FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]

# ---------------------------------------------------------------- durations
DURATION_PATTERN = r"^[1-9][0-9]{0,6}(s|m|h|d|w)$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def check_duration(value: str) -> str:
    """``value`` if it is a duration (``30s``, ``15m``, ``1h``, ``7d``), else ValueError."""
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{value!r} is not a duration: write a number and a unit, e.g. 30s, 15m, 1h, 7d, 2w")
    return value


Duration = Annotated[StrictStr, AfterValidator(check_duration), Field(json_schema_extra={"pattern": DURATION_PATTERN})]


def duration_seconds(value: str) -> int:
    """``"15m"`` -> 900."""
    return int(value[:-1]) * _UNIT_SECONDS[value[-1]]


def format_seconds(seconds: int) -> str:
    """900 -> ``"15m"``: the largest unit that divides the value."""
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


# ---------------------------------------------------------------- cron
CRON_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
        },
    ),
    ("day of week", 0, 7, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)
_DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def _cron_values(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for item in text.split(","):
        step = 1
        if "/" in item:
            item, step_text = item.split("/", 1)
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise ValueError(f"bad step {step_text!r} in the {name} field")
            step = int(step_text)
        if item == "*":
            start, end = lo, hi
        else:
            bounds = item.split("-", 1)
            nums = []
            for b in bounds:
                b_low = b.lower()
                if b_low in names:
                    nums.append(names[b_low])
                elif b.isascii() and b.isdigit() and len(b) <= 4:
                    nums.append(int(b))
                else:
                    raise ValueError(f"{b!r} is not a valid {name}")
            start = nums[0]
            end = nums[1] if len(nums) == 2 else (hi if step > 1 else start)
            for n in nums:
                if not lo <= n <= hi:
                    raise ValueError(f"{name} {n} is out of range {lo}-{hi}")
            if start > end:
                raise ValueError(f"range {item!r} in the {name} field runs backwards")
        out.update(range(start, end + 1, step))
    return out


# a cron expression is fields of ASCII characters separated by single-line blanks: crontab, Kubernetes and
# the schedulers read nothing else (no line breaks, no non-ASCII digits, no tabs or NEL inside)
_CRON_CHARS = re.compile(r"[A-Za-z0-9*/,@ -]+")


def check_cron(value: str) -> str:
    """``value`` if it is a schedule (a 5-field cron or an @ macro), else ValueError."""
    if not _CRON_CHARS.fullmatch(value):
        raise ValueError(
            f"cron expression {value!r} may only hold ASCII letters, digits, '*', '/', ',', '-', '@' and spaces"
        )
    text = value.strip()
    if text.startswith("@"):
        if text not in CRON_MACROS:
            raise ValueError(f"unknown cron macro {text!r}; use one of {', '.join(sorted(CRON_MACROS))}")
        return value
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron expression {value!r} has {len(fields)} fields; use exactly 5 "
            "(minute hour day-of-month month day-of-week) or a macro such as @daily"
        )
    sets = [_cron_values(f, name, lo, hi, names) for f, (name, lo, hi, names) in zip(fields, _FIELDS, strict=True)]
    dom, months = sets[2], sets[3]
    if fields[2] != "*" and fields[4] == "*" and not any(d <= _DAYS_IN_MONTH[m - 1] for d in dom for m in months):
        raise ValueError(f"cron expression {value!r} never fires: no chosen month has that day")
    return value


Cron = Annotated[StrictStr, AfterValidator(check_cron)]


def cron_expression(value: str) -> str:
    """A macro expanded to its 5-field form (for schedulers that do not know macros)."""
    return CRON_MACROS.get(value.strip(), value.strip())


def cron_interval_seconds(value: str) -> int:
    """The longest gap between two runs of a cron expression, within a coarse bound.

    Good enough for comparing a schedule with a freshness requirement: exact for the
    common forms (every N minutes, hourly, daily at fixed times, weekly, monthly).
    """
    minute, hour, dom, month, dow = cron_expression(value).split()
    mins = sorted(_cron_values(minute, *_FIELDS[0]))
    hours = sorted(_cron_values(hour, *_FIELDS[1]))
    if dom != "*" or month != "*":
        return 31 * 86400 if month == "*" else 366 * 86400
    if dow != "*":
        days = sorted(_cron_values(dow, *_FIELDS[4]))
        days = sorted({d % 7 for d in days})
        gaps = [(days[(i + 1) % len(days)] - d) % 7 or 7 for i, d in enumerate(days)]
        return max(gaps) * 86400
    times = [h * 60 + m for h in hours for m in mins]
    gaps = [(times[(i + 1) % len(times)] - t) % 1440 or 1440 for i, t in enumerate(times)]
    return max(gaps) * 60
