"""What a cold start costs each Lambda handler in imports, and what lazy imports would save.

Each handler module (``functions/<name>/app.py``) is loaded with
``importlib.util.spec_from_file_location`` in a fresh interpreter, with the environment a
deployed function has (region, Powertools settings, the function's variables; no
credentials: nothing is called), and timed from inside that interpreter (so Python's own
start-up is not counted). Each figure is the median of 5 fresh interpreters (``--quick``: 3).

Twice: with the bytecode caches this checkout has, and with every third-party and fwwatch
module compiled from source, as happens in Lambda when the layer ships no ``.pyc`` files
(``/opt`` is read-only, so nothing compiled there is kept); the standard library keeps its
bytecode in both. ``-X importtime`` (one more interpreter per handler) says which packages
the time goes to. A "saving" is the time a module takes to import in a fresh interpreter
after what the handler needs anyway was imported first: what it costs on top.

Each handler's import is also given as a ratio to ``import boto3`` alone, measured in the same
run (a yardstick that moves with the machine), beside the same handler as it was with
Powertools' Tracer: the Tracer created first, as ``fwwatch.aws.observability`` did before
the X-Ray SDK (end of life) was dropped. That "before" needs ``aws-xray-sdk`` importable; in
a virtualenv without it, the ratios measured when it was dropped are shown, labelled so.

Each handler's service module (the ``fwwatch.aws.<module>`` its app.py takes its ``...Service``
from) is broken down into its module-level imports, read from its source in its order, each
timed after the ones before it and alone. The children import this checkout's ``shared/``
(put on ``PYTHONPATH``, as the layer is on ``sys.path`` in Lambda), whatever the virtualenv's
editable install points to.

Usage: ``.venv/bin/python bench/cold_start.py [--quick]``.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import REPO, machine, table

HANDLERS = ("scheduler", "checker", "differ", "digest", "slack")
LAYER = REPO / ".aws-sam" / "build" / "SharedLayer"
SHARED = REPO / "shared"

# What no handler may import: CLI and simulator code and their dependencies, and what is no
# longer a dependency at all (not in the layer; this virtualenv may still have it installed).
FORBIDDEN = (
    "aiohttp", "yaml", "fwwatch.simulator", "fwwatch.cli", "fwwatch.local", "tuya_connector",
    "requests", "pydantic_settings",
)  # fmt: skip

# What each handler imports without ever using it (read from the handlers and their service
# modules; checked against what a fresh interpreter has loaded after importing the handler).
UNUSED: dict[str, dict[str, str]] = {
    "scheduler": {
        "fwwatch.check": "checks no device (`fwwatch.cycle` imports it for `check_batch`)",
        "fwwatch.news": "makes no news (`fwwatch.cycle` imports it for `Settlement.news`)",
    },
    "checker": {
        "fwwatch.news": "makes no news, the state table's stream does (`fwwatch.cycle` "
        "imports it for `Settlement.news`, which local mode calls)",
    },
    "differ": {},
    "digest": {},
    "slack": {},
}

# Imported first by every handler, whatever it does: the baseline a saving is measured on.
BASE = [
    "aws_lambda_powertools",
    "aws_lambda_powertools.utilities.typing",
    "aws_lambda_powertools.metrics",
    "fwwatch.aws.observability",
    "fwwatch.aws.settings",
    "fwwatch.messages",
]


# What fwwatch.aws.observability did at import while it owned a Tracer: the "before".
OLD_TRACER = "from aws_lambda_powertools import Tracer\nTracer(service='fwwatch')"

# The "before" ratios (handler import with the Tracer / `import boto3`, with bytecode)
# measured on 2026-12-01 when the Tracer and aws-xray-sdk were dropped (aws-xray-sdk 2.15.0,
# Powertools 3.37.0; bench/RESULTS.md of that day), for a virtualenv that no longer has
# aws-xray-sdk to measure them again.
EARLIER_BEFORE_RATIO: dict[str, float | None] = {
    "scheduler": 2.79,
    "checker": 2.91,
    "differ": 2.91,
    "digest": 2.83,
    "slack": 2.75,
}

HANDLER_HEADER = (
    "handler", "import ms", "without bytecode ms", "modules",
    "top 8 packages (self ms)", "app.py's own imports (cumulative ms)",
)  # fmt: skip
RATIO_HEADER = (
    "handler", "import ms", "ratio to boto3", "with the Tracer (before), ms",
    "ratio to boto3, before", "saved",
)  # fmt: skip
SUMMARY_HEADER = (
    "handler", "import ms", "without bytecode, ms",
    "lazy-import savings, ms (with / without bytecode)", "sum", "bytecode in the layer saves, ms",
)  # fmt: skip


@dataclass(frozen=True)
class Saving:
    """A module (or modules) a handler could import lazily, or not at all."""

    label: str
    change: str
    handlers: tuple[str, ...]
    preload: tuple[str, ...]
    targets: tuple[str, ...]
    note: str
    counted: bool = True  # False: information only, not a saving to add up


SAVINGS = (
    Saving(
        "fwwatch.check",
        "`fwwatch.cycle` importing `fwwatch.check` where it is used (`check_batch`)",
        ("scheduler",),
        (*BASE, "asyncio"),
        ("fwwatch.check",),
        "the scheduler takes only `listed_device_id` from `fwwatch.cycle` (for `fwwatch.fanout`)",
    ),
    Saving(
        "fwwatch.news",
        "`fwwatch.cycle` importing `fwwatch.news` where it is used (`Settlement.news`)",
        ("scheduler", "checker"),
        tuple(BASE),
        ("fwwatch.news",),
        "the news are made by local mode and the differ, not by these two",
    ),
    Saving(
        "e-mail notifier",
        "`fwwatch.notify/__init__` lazy: the Slack notifier without the e-mail one",
        ("slack",),
        (*BASE, "httpx"),
        ("smtplib", "email.message", "email.utils"),
        "paid on the first invocation, not at import: the service imports "
        "`fwwatch.notify.slack` in `handle`, and the package's `__init__` imports every notifier",
        counted=False,
    ),
    Saving(
        "Parameters",
        "Powertools Parameters (the Tuya secret, the Slack webhook secret; already lazy)",
        ("scheduler", "checker", "slack"),
        (*BASE, "boto3"),
        ("aws_lambda_powertools.utilities.parameters",),
        "paid on the first invocation, on top of boto3",
        counted=False,
    ),
)

CHILD = r"""
import json, sys, time
cfg = json.loads(sys.argv[1])
if cfg["no_bytecode"]:
    import importlib._bootstrap_external as bootstrap
    original = bootstrap.cache_from_source
    prefixes = tuple(cfg["no_bytecode"])
    def no_cache(path, *args, **kwargs):
        if str(path).startswith(prefixes):
            raise NotImplementedError  # no bytecode for this file: compile the source
        return original(path, *args, **kwargs)
    bootstrap.cache_from_source = no_cache
    sys.dont_write_bytecode = True
import importlib, importlib.util
for name in cfg["preload"]:
    importlib.import_module(name)
ms = []
print("-- steps --", file=sys.stderr, flush=True)
for label, kind, target in cfg["steps"]:
    start = time.perf_counter()
    if kind == "file":
        spec = importlib.util.spec_from_file_location(label, target)
        module = importlib.util.module_from_spec(spec)
        sys.modules[label] = module
        spec.loader.exec_module(module)
    elif kind == "exec":
        exec(target, {})
    else:
        importlib.import_module(target)
    ms.append((time.perf_counter() - start) * 1000)
fwwatch = getattr(sys.modules.get("fwwatch"), "__file__", None)
print(json.dumps({"ms": ms, "modules": sorted(sys.modules), "fwwatch": fwwatch}))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def lambda_env(handler: str) -> dict[str, str]:
    """The environment of a deployed function (dummy resource names, no credentials)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TUYA_", "FWWATCH_", "POWERTOOLS_", "PYTHON", "_X_AMZN"))
    }
    env.update(
        # This checkout's code, as the layer's is on sys.path in Lambda (not whatever tree the
        # virtualenv's editable install points to: a worktree shares another's virtualenv).
        PYTHONPATH=str(SHARED),
        AWS_DEFAULT_REGION="eu-central-1",
        AWS_REGION="eu-central-1",
        AWS_LAMBDA_FUNCTION_NAME=f"fwwatch-{handler}",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_EXECUTION_ENV="AWS_Lambda_python3.13",
        POWERTOOLS_SERVICE_NAME="fwwatch",
        POWERTOOLS_METRICS_NAMESPACE="fwwatch",
        POWERTOOLS_LOG_LEVEL="INFO",
        LOG_LEVEL="INFO",
        CHECK_QUEUE_URL="https://sqs.eu-central-1.amazonaws.com/123456789012/check",
        CHECK_DEAD_LETTER_QUEUE_URL="https://sqs.eu-central-1.amazonaws.com/123456789012/dlq",
        CONTROL_TABLE="fwwatch-control",
        STATE_TABLE="fwwatch-state",
        RUN_TABLE="fwwatch-runs",
        DIGEST_QUEUE_URL="https://sqs.eu-central-1.amazonaws.com/123456789012/digest",
        TOPIC_ARN="arn:aws:sns:eu-central-1:123456789012:fwwatch",
        TUYA_ENDPOINT="https://openapi.tuyaeu.com",
        TUYA_SECRET_NAME="fwwatch/tuya",
        TUYA_QPS="20",
        SLACK_WEBHOOK_SECRET_NAME="fwwatch/slack-webhook",
    )
    return env


def no_bytecode_prefixes() -> list[str]:
    """Where the layer's code lives here: site-packages, shared/ and functions/."""
    return [
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        str(SHARED),
        str(REPO / "functions"),
    ]


def child(
    steps: Sequence[tuple[str, str, str]],
    *,
    preload: Sequence[str] = (),
    no_bytecode: bool = False,
    env: dict[str, str] | None = None,
    importtime: bool = False,
) -> tuple[list[float], list[str], str]:
    """One fresh interpreter: (ms per step, modules loaded, -X importtime output)."""
    config = {
        "steps": list(steps),
        "preload": list(preload),
        "no_bytecode": no_bytecode_prefixes() if no_bytecode else [],
    }
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", CHILD]
    done = subprocess.run(
        [*command, json.dumps(config)],
        capture_output=True,
        text=True,
        env=env or lambda_env("bench"),
        cwd=REPO,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["fwwatch"] and not Path(result["fwwatch"]).is_relative_to(SHARED):
        raise RuntimeError(f"the child imported another tree's fwwatch: {result['fwwatch']}")
    return list(result["ms"]), list(result["modules"]), done.stderr


def median_ms(
    runs: int,
    steps: Sequence[tuple[str, str, str]],
    *,
    preload: Sequence[str] = (),
    no_bytecode: bool = False,
    env: dict[str, str] | None = None,
) -> list[float]:
    """The median over ``runs`` fresh interpreters, per step."""
    samples = [
        child(steps, preload=preload, no_bytecode=no_bytecode, env=env)[0] for _ in range(runs)
    ]
    return [statistics.median(column) for column in zip(*samples, strict=True)]


def ratio_rows(rounds: int) -> tuple[float, list[list[object]]]:
    """`import boto3` alone, and each handler's import after and before as ratios to it.

    Measured in ``rounds``, each a fresh interpreter for boto3, the handler and the handler
    with the Tracer one after another, so that a busy moment of the machine weighs on all
    three; each ratio is the median of the rounds' ratios.
    """
    boto3_step = [("boto3", "module", "boto3")]
    live = importlib.util.find_spec("aws_xray_sdk") is not None
    yardsticks: list[float] = []
    rows: list[list[object]] = []
    for handler in HANDLERS:
        env = lambda_env(handler)
        after_steps = [handler_step(handler)]
        before_steps = [("tracer", "exec", OLD_TRACER), handler_step(handler)]
        child(boto3_step, env=env)  # warm the bytecode caches and the file system
        if live:
            child(before_steps, env=env)
        measured: list[tuple[float, float, float | None]] = []
        for _ in range(rounds):
            boto3_ms = sum(child(boto3_step, env=env)[0])
            after_ms = sum(child(after_steps, env=env)[0])
            before_ms = sum(child(before_steps, env=env)[0]) if live else None
            measured.append((boto3_ms, after_ms, before_ms))
        yardsticks += [boto3_ms for boto3_ms, _, _ in measured]
        after = statistics.median(a for _, a, _ in measured)
        after_ratio = statistics.median(a / y for y, a, _ in measured)
        cells: list[object]
        if live:
            before = statistics.median(b for _, _, b in measured if b is not None)
            before_ratio = statistics.median(b / y for y, _, b in measured if b is not None)
            log(f"{handler}: {after_ratio:.2f} x boto3, with the Tracer {before_ratio:.2f} x")
            cells = [
                f"{before:.0f}",
                f"{before_ratio:.2f}",
                f"{1 - after_ratio / before_ratio:.0%}",
            ]
        else:
            earlier = EARLIER_BEFORE_RATIO[handler]
            cells = [
                "not measured (no aws-xray-sdk in this virtualenv)",
                f"{earlier:.2f} (measured on 2026-12-01)" if earlier else "not measured",
                f"{1 - after_ratio / earlier:.0%}" if earlier else "-",
            ]
        rows.append([handler, f"{after:.0f}", f"{after_ratio:.2f}", *cells])
    return statistics.median(yardsticks), rows


def importtime_entries(stderr: str) -> list[tuple[str, int, float, float]]:
    """``-X importtime`` lines after the steps began: (name, depth, self ms, cumulative ms)."""
    entries: list[tuple[str, int, float, float]] = []
    for line in stderr.split("-- steps --", 1)[-1].splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, cumulative, field = line[len("import time:") :].split("|")
        if not own.strip().isdigit():
            continue  # the header line
        name = field.strip()
        depth = (len(field) - len(field.lstrip()) - 1) // 2
        entries.append((name, depth, int(own) / 1000, int(cumulative) / 1000))
    return entries


def importtime_packages(stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """Self time summed per top-level package: the biggest ``top``."""
    per_package: defaultdict[str, float] = defaultdict(float)
    for name, _, own, _ in importtime_entries(stderr):
        per_package[name.split(".")[0]] += own
    return sorted(per_package.items(), key=lambda item: -item[1])[:top]


def importtime_direct(stderr: str, minimum_ms: float = 1.0) -> list[tuple[str, float]]:
    """What the handler module imports itself, with each import's cumulative time."""
    return [
        (name, cumulative)
        for name, depth, _, cumulative in importtime_entries(stderr)
        if depth == 0 and cumulative >= minimum_ms
    ]


def describe_preload(preload: Sequence[str]) -> str:
    """The modules imported first, with the common baseline abbreviated as B."""
    if list(preload[: len(BASE)]) == BASE:
        return " + ".join(["B", *preload[len(BASE) :]])
    return ", ".join(preload)


def handler_step(handler: str) -> tuple[str, str, str]:
    return ("app", "file", str(REPO / "functions" / handler / "app.py"))


def loaded(modules: Sequence[str], name: str) -> bool:
    return name in modules or any(module.startswith(name + ".") for module in modules)


def service_module(handler: str) -> str:
    """The ``fwwatch.aws`` module the handler's app.py takes its ``...Service`` from."""
    tree = ast.parse((REPO / "functions" / handler / "app.py").read_text())
    found = [
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("fwwatch.aws.")
        and any(alias.name.endswith("Service") for alias in node.names)
    ]
    if len(found) != 1:
        raise RuntimeError(f"functions/{handler}/app.py: no single service module ({found})")
    return str(found[0])


def module_source(module: str) -> tuple[Path, bool]:
    """(the source file of an fwwatch module in shared/, whether it is a package)."""
    base = SHARED.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py", True
    return base.with_suffix(".py"), False


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name a ``from ... import`` in ``module`` imports from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def module_imports(module: str) -> list[str]:
    """The modules ``module`` imports at module level, in order (relative ones resolved).

    Imports under ``if TYPE_CHECKING:`` and inside functions are not run at import: left out.
    """
    path, is_package = module_source(module)
    names: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names.append(resolve(node, module, is_package))
    return list(dict.fromkeys(names))


def deferred_imports(module: str) -> list[str]:
    """What ``module`` imports inside its functions (paid on the first call, not at import),
    as the statements read: ``from`` imports may name a submodule or a lazy attribute."""
    path, is_package = module_source(module)
    names: list[str] = []
    for top in ast.parse(path.read_text()).body:
        if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(top):
            if isinstance(node, ast.Import):
                names += [f"import {alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = ", ".join(alias.name for alias in node.names)
                names.append(f"from {resolve(node, module, is_package)} import {imported}")
    return list(dict.fromkeys(names))


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes in files, bytes on disk as du counts them) under ``path``."""
    apparent = disk = 0
    for root, _, files in os.walk(path):
        for name in files:
            stat = (Path(root) / name).lstat()
            apparent += stat.st_size
            disk += stat.st_blocks * 512
    return apparent, disk


def mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def layer_section() -> list[str]:
    if not LAYER.is_dir():
        return [
            "The built layer is missing (`.aws-sam/build/SharedLayer`): run `make check` "
            "(it builds it) and run this script again for its size.",
        ]
    root = LAYER / "python" if (LAYER / "python").is_dir() else LAYER
    apparent, disk = tree_size(LAYER)
    entries: list[tuple[str, int]] = []
    for entry in root.iterdir():
        if entry.name.endswith((".dist-info", ".data")) or entry.name == "__pycache__":
            continue
        size = tree_size(entry)[0] if entry.is_dir() else entry.stat().st_size
        entries.append((entry.name, size))
    entries.sort(key=lambda item: -item[1])
    pyc = sum(1 for _ in LAYER.rglob("*.pyc"))
    sources = sum(1 for _ in LAYER.rglob("*.py"))
    unused = [
        (name, tree_size(root / "fwwatch" / name)[0])
        for name in ("simulator", "cli", "local")
        if (root / "fwwatch" / name).is_dir()
    ]
    lines = [
        f"Built layer (`{LAYER.relative_to(REPO)}`, unzipped): {mb(apparent)} in files, "
        f"{mb(disk)} on disk (du); {sources} `.py` files and {pyc} `.pyc` files. The biggest "
        "packages:",
        "",
        table(["package", "size"], [[name, mb(size)] for name, size in entries[:8]]),
    ]
    if unused:
        listed = ", ".join(f"`fwwatch/{name}` {size / 1e3:.0f} kB" for name, size in unused)
        lines.append(f"Shipped but never imported by a function: {listed}.")
    if (root / "botocore").is_dir():
        lines.append(
            "botocore (with jmespath, python-dateutil, urllib3) is in the layer although the "
            "runtime brings its own boto3 and botocore: a dependency requires it (it was "
            "aws-xray-sdk, through Powertools' `tracer` extra, no longer in "
            "shared/requirements.txt); an old build, or a new dependency to look at."
        )
    else:
        lines.append(
            "No botocore in the layer: the functions use the runtime's boto3 and botocore "
            "(aws-xray-sdk, which required them, is no longer a dependency)."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 interpreters per figure")
    args = parser.parse_args()
    runs = 3 if args.quick else 5
    started = time.monotonic()

    handler_rows: list[list[object]] = []
    check_rows: list[list[object]] = []
    totals: dict[str, tuple[float, float]] = {}
    start_modules: dict[str, list[str]] = {}
    for handler in HANDLERS:
        env = lambda_env(handler)
        step = [handler_step(handler)]
        child(step, env=env)  # warm the bytecode caches and the file system
        with_pyc = median_ms(runs, step, env=env)[0]
        without = median_ms(runs, step, env=env, no_bytecode=True)[0]
        totals[handler] = (with_pyc, without)
        _, modules, stderr = child(step, env=env, importtime=True)
        start_modules[handler] = modules
        missing = [name for name in BASE if not loaded(modules, name)]
        if missing:  # B would no longer be what every handler needs anyway
            raise RuntimeError(f"{handler} does not import {missing}: update BASE")
        top = importtime_packages(stderr)
        direct = importtime_direct(stderr)
        log(f"{handler}: {with_pyc:.0f} ms ({without:.0f} ms without bytecode)")
        handler_rows.append([
            handler, f"{with_pyc:.0f}", f"{without:.0f}", len(modules),
            ", ".join(f"{name} {ms:.0f}" for name, ms in top),
            ", ".join(f"{name} {ms:.0f}" for name, ms in direct),
        ])  # fmt: skip
        bad = [name for name in FORBIDDEN if loaded(modules, name)]
        unused = [
            f"`{name}` ({why})" for name, why in UNUSED[handler].items() if loaded(modules, name)
        ]
        check_rows.append([handler, ", ".join(bad) or "none", "; ".join(unused) or "none"])

    # The headline figure: more rounds than the others, the machine's noise being what it is.
    ratio_rounds = 2 * runs + 1
    yardstick, ratios = ratio_rows(ratio_rounds)

    # Each handler's service module against its parts: each import in the module's order.
    part_rows: list[list[object]] = []
    service_lines: list[str] = []
    alone_ms: dict[str, float] = {}
    for handler in HANDLERS:
        service = service_module(handler)
        steps = [(name, "module", name) for name in [*module_imports(service), service]]
        part_ms = median_ms(runs, steps, env=lambda_env(handler))
        log(f"{service}: {sum(part_ms):.0f} ms")
        small = 0.0
        for (name, _, _), ms in zip(steps, part_ms, strict=True):
            # Alone: what the import costs in a fresh interpreter, shared dependencies included.
            if name.split(".")[0] in sys.stdlib_module_names:
                alone = ms
            elif name not in alone_ms:
                alone = alone_ms[name] = median_ms(runs, [(name, "module", name)])[0]
            else:
                alone = alone_ms[name]
            if ms < 1.0 and alone < 1.0:
                small += ms
                continue
            part_rows.append([handler, f"`{name}`", f"{ms:.1f}", f"{alone:.1f}"])
        # What it and the fwwatch.aws modules it composes import inside their functions.
        composed = [name for name, _, _ in steps if name.startswith("fwwatch.aws.")]
        deferred = "; ".join(
            f"{name.removeprefix('fwwatch.aws.')}: "
            + ", ".join(f"`{target}`" for target in deferred_imports(name))
            for name in composed
            if deferred_imports(name)
        )
        service_lines.append(
            f"- {handler}: `import {service}` {sum(part_ms):.0f} ms (imports under 1 ms both "
            f"ways left out below: {small:.1f} ms together); imported inside functions, on "
            f"the first call that needs it: {deferred or 'nothing'}."
        )

    saving_rows: list[list[object]] = []
    per_handler: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for saving in SAVINGS:
        steps = [(target, "module", target) for target in saving.targets]
        ms = sum(median_ms(runs, steps, preload=saving.preload))
        cold = sum(median_ms(runs, steps, preload=saving.preload, no_bytecode=True))
        log(f"{saving.targets[0]}: {ms:.0f} ms ({cold:.0f} ms without bytecode)")
        saving_rows.append([
            saving.change + ("" if saving.counted else " *(information)*"),
            ", ".join(saving.handlers), f"{ms:.0f}", f"{cold:.0f}",
            f"{', '.join(saving.targets)} after {describe_preload(saving.preload)}",
            saving.note,
        ])  # fmt: skip
        # A saving counts for a handler only while the handler imports its targets at start-up.
        stale = [
            handler
            for handler in saving.handlers
            if not all(loaded(start_modules[handler], target) for target in saving.targets)
        ]
        if saving.counted and stale:
            log(f"{saving.label}: no longer imported at start-up by {', '.join(stale)}")
            saving_rows[-1][-1] = f"{saving.note} (not imported at start-up by {', '.join(stale)})"
        if saving.counted:
            for handler in saving.handlers:
                if handler not in stale:
                    per_handler[handler].append((saving.label, ms, cold))

    summary_rows: list[list[object]] = []
    for handler in HANDLERS:
        items = per_handler[handler]
        with_pyc, without = totals[handler]
        lazy = sum(ms for _, ms, _ in items)
        lazy_cold = sum(cold for _, _, cold in items)
        summary_rows.append([
            handler, f"{with_pyc:.0f}", f"{without:.0f}",
            "; ".join(f"{name} {ms:.0f} / {cold:.0f}" for name, ms, cold in items),
            f"{lazy:.0f} / {lazy_cold:.0f} ({lazy / with_pyc:.0%} / {lazy_cold / without:.0%})",
            f"{without - with_pyc:.0f}",
        ])  # fmt: skip

    clean = all(row[1] == "none" for row in check_rows)
    out = [
        "## Cold start: handler imports",
        "",
        "Each handler module loaded in a fresh interpreter with a deployed function's "
        "environment (no credentials), timed inside it with `importlib.util."
        f'spec_from_file_location`; median of {runs} interpreters. "Without bytecode" '
        "compiles every third-party and fwwatch module from source, as Lambda does when the "
        "layer ships no `.pyc` (its `/opt` is read-only; the standard library keeps its "
        "bytecode). From one more interpreter under `-X importtime` (its figures are inflated "
        "by the tracing): the self time summed per top-level package, and the cumulative time "
        f"of each import in app.py. Measured on {machine()}; x86_64 here, arm64 with a "
        "fraction of a vCPU at 256 MB in Lambda, so expect the real figures to be larger.",
        "",
        table(HANDLER_HEADER, handler_rows),
        "Each handler's import as a ratio to `import boto3` alone in a fresh interpreter with "
        f"the same environment ({yardstick:.0f} ms in this run), and as it was with Powertools' "
        "Tracer, created first as `fwwatch.aws.observability` did before the X-Ray SDK was "
        f"dropped; with bytecode, {ratio_rounds} rounds of the three interpreters one after "
        "another, "
        "the median of the rounds' ratios (so the import ms here differ from the table above):",
        "",
        table(RATIO_HEADER, ratios),
        "What must never be imported (CLI, simulator and their dependencies) and what is "
        "imported but never used:",
        "",
        table(["handler", "forbidden imports", "imported, never used"], check_rows),
        "Each handler's service module (the `fwwatch.aws` module its app.py takes its service "
        "from) imported in a fresh interpreter, and its module-level imports in its order, "
        "each timed after the ones before it (they add up to the module's total: a shared "
        "dependency counts where it is first imported), and each alone in a fresh interpreter:",
        "",
        *service_lines,
        "",
        table(["handler", "import", "in order, ms", "alone, ms"], part_rows),
        "Savings available: each module imported in fresh interpreters (median) after what "
        "the handler needs anyway; B = " + ", ".join(BASE) + ":",
        "",
        table(
            ["change", "handlers", "ms", "without bytecode, ms", "how measured", "note"],
            saving_rows,
        ),
        "Per handler (lazy-import savings overlap a little, so the sum is approximate):",
        "",
        table(SUMMARY_HEADER, summary_rows),
        *layer_section(),
        "",
        "Floor (no handler imports the CLI, the simulator, aiohttp, yaml or pydantic-settings): "
        f"**{'met' if clean else 'not met'}**.",
    ]
    print("\n".join(out))
    log(f"cold_start took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
