"""Command-line flags of ``python -m benchmarks.run`` and their validation (exit code 2)."""
from __future__ import annotations

import argparse
import hashlib
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from plumbing.config import SEED_MAX

from ..engine.precision import DEFAULT_HELP, PRECISIONS
from ..tasks import TASKS

DATA_KINDS = ("synthetic", "ntu60", "ntu120", "pkummd")
LEVEL_SETS = ("-", "F", "C", "V", "F+C", "F+V", "C+V", "F+C+V")


class UsageError(ValueError):
    """A bad flag; printed as one line, exit code 2, nothing written."""


@dataclass
class Options:
    methods: list[str]
    tasks: list[str]
    profile: str | None
    data: dict[str, str]
    fractions: list[float]
    seeds: list[int]
    streams: list[str] | None      # None: the method's declared streams (--task all) or joint
    levels: list[str] | None       # None: the method's declared level sets (--task all) or its default
    device: str
    out: Path
    cache_dir: Path
    fresh: bool = False
    compile: bool = False
    dry_run: bool = False
    deterministic: bool = False
    report: bool = True
    progress: bool = True
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    shard: tuple[int, int] = (1, 1)       # run the K-th of N disjoint parts of the plan
    workers: int = 0                      # parallel worker processes on CPU; 0 = auto
    worker: tuple[int, int] = (1, 1)      # internal: this process is worker k of w (benchmarks/parallel.py)
    task_all: bool = False                # --task all: the tables' plan (plan.py)
    plugins: list[dict] = field(default_factory=list)     # modules imported by --plugin (load_plugins)
    precision: str | None = None          # None: the device's default (benchmarks.engine.precision)
    smoke: bool = False


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (``error: ...``, exit code 2), like every other refusal."""

    def error(self, message: str):
        print(f"error: {message} (see 'python -m benchmarks.run --help')", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m benchmarks.run",
        description="Pre-train (once, cached), then run action recognition, detection (mAP_a/mAP_v) and "
                    "motion prediction (MPJPE) at each label fraction; one JSON record per run under --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--method", default="hitrs",
                   help="method name(s), comma-separated, or 'all' (registered: see methods.available())")
    p.add_argument("--task", default="all", help=f"task(s), comma-separated, or 'all': {', '.join(TASKS)}")
    p.add_argument("--profile", default=None, choices=("ci", "small", "paper"),
                   help="named configuration preset; default: 'paper' on a GPU, 'small' on CPU")
    p.add_argument("--data", action="append", default=None, metavar="KIND[=DIR]",
                   help="'synthetic' (default; generated on first use) or a prepared cache: ntu60=DIR, "
                        "ntu120=DIR (recognition, prediction, pre-training) and pkummd=DIR (detection); repeatable")
    p.add_argument("--fractions", default="1.0,0.1", help="label fractions in (0, 1], comma-separated")
    p.add_argument("--seeds", default="0", help="seeds, comma-separated; each seed is its own pre-training and runs")
    p.add_argument("--streams", default=None,
                   help="input streams, comma-separated (joint, motion, bone); all three also give the '-3s' ensemble. "
                        "Default: with --task all every stream a method's table rows need, else joint; given, it "
                        "narrows the plan")
    p.add_argument("--levels", default=None,
                   help=f"pre-trained level sets, comma-separated from {', '.join(LEVEL_SETS)} ('-' = random init, "
                        "for every method). Default: with --task all Hi-TRS's 8 sets of Table 3 and every method's "
                        "random-init reference, else each method's pre-trained default (F+C+V); given, it narrows")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to run")
    p.add_argument("--out", default="results", help="results folder (records, artifacts, pre-training cache)")
    p.add_argument("--cache-dir", default=".cache", help="where the synthetic world is generated")
    p.add_argument("--set", action="append", default=[], metavar="SCOPE.KEY=VALUE", dest="overrides",
                   help="override any config value, e.g. recognition.epochs_pretrained=5, hitrs.d_model=64, "
                        "detection.postprocess=argmax_runs; repeatable")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE (on PYTHONPATH) before methods are resolved; it registers its own method "
                        "with @methods.register(name, config_factory) (docs/plugins.md); repeatable")
    p.add_argument("--precision", default=None, choices=PRECISIONS,
                   help=f"numeric precision: fp32; tf32 (CUDA TF32 matmuls, = fp32 on CPU); bf16 (autocast, also on "
                        f"CPU to check GPU numerics); {DEFAULT_HELP}")
    p.add_argument("--smoke", action="store_true",
                   help="run every planned job at the profile's model sizes but only 2 optimizer steps per training "
                        "phase, batches of a few samples and evaluation on a few sequences / videos; records carry "
                        "smoke: true and never count as results")
    p.add_argument("--fresh", action="store_true", help="ignore cached pre-trainings and train again")
    p.add_argument("--compile", action="store_true", help="torch.compile the models (opt-in)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan with its counts and a time estimate (CPU: short calibration), run nothing")
    p.add_argument("--shard", default="1/1", metavar="K/N",
                   help="run only the K-th of N disjoint parts of the plan (whole pre-trainings with their "
                        "downstream runs); N processes or machines sharing --out complete it, then "
                        "'python -m reports.build' merges")
    p.add_argument("--workers", default=0, type=int, metavar="N",
                   help="parallel worker processes sharing --out (0 = auto: on CPU with run.cpu_threads > 0, "
                        "cores / cpu_threads; else 1)")
    p.add_argument("--worker", default="1/1", help=argparse.SUPPRESS)
    p.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms (slower on GPU)")
    p.add_argument("--no-report", dest="report", action="store_false", help="do not rebuild reports/ at the end")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return p


def load_plugins(argv: list[str] | None) -> list[dict]:
    """Import every ``--plugin MODULE`` (before ``parse`` resolves ``--method``); returns what was
    loaded (module, file, sha256, methods it registered) for the records."""
    import methods

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    names = pre.parse_known_args(argv)[0].plugin
    loaded = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            raise UsageError(f"--plugin {name}: module not found ({err}); put the folder that holds it on "
                             "PYTHONPATH, e.g. PYTHONPATH=/path/to/dir python -m benchmarks.run --plugin NAME") from None
        except Exception as err:  # noqa: BLE001 - the plugin's own import error, shown in one line
            raise UsageError(f"--plugin {name}: importing it failed: {type(err).__name__}: {err}") from None
        mine = [n for n, cls in zip(methods.available(), methods.classes()) 
                if cls.__module__ == name or cls.__module__.startswith(name + ".")]
        if not mine:
            raise UsageError(f"--plugin {name}: imported, but it registers no method; decorate its SkeletonMethod "
                             "subclass with @methods.register(name, config_factory) (docs/plugins.md)")
        path = getattr(module, "__file__", None)
        loaded.append({"module": name, "file": path, "methods": mine,
                       "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None})
    return loaded


def _split(value: str, flag: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"{flag}: empty list")
    return items


def _folder(value: str, flag: str) -> Path:
    """A folder flag's value; an empty one (``--out ""``) would mean the current directory."""
    if not value.strip():
        raise UsageError(f"{flag} '': empty folder name (it would write into the current directory); "
                         f"give a folder, e.g. {flag} {'results' if flag == '--out' else '.cache'}")
    if "\0" in value:
        raise UsageError(f"{flag} {value!r}: a folder name cannot hold a NUL character")
    return Path(value)


def parse(argv: list[str] | None, available_methods: list[str]) -> Options:
    args = parser().parse_args(argv)
    out, cache_dir = _folder(args.out, "--out"), _folder(args.cache_dir, "--cache-dir")
    methods = available_methods if args.method == "all" else _split(args.method, "--method")
    for m in methods:
        if m not in available_methods:
            raise UsageError(f"--method {m}: unknown method; choose from {', '.join(available_methods)} or 'all'")
    tasks = list(TASKS) if args.task == "all" else _split(args.task, "--task")
    for t in tasks:
        if t not in TASKS:
            raise UsageError(f"--task {t}: unknown task; choose from {', '.join(TASKS)} or 'all'")
    fractions = []
    for f in _split(args.fractions, "--fractions"):
        try:
            value = float(f)
        except ValueError:
            raise UsageError(f"--fractions {f}: not a number; give fractions like 1.0,0.1") from None
        if not 0.0 < value <= 1.0:
            raise UsageError(f"--fractions {f}: a label fraction must be in (0, 1], e.g. 0.1 for 10%")
        fractions.append(value)
    try:
        seeds = [int(s) for s in _split(args.seeds, "--seeds")]
    except ValueError:
        raise UsageError(f"--seeds {args.seeds}: seeds are integers, e.g. 0,1,2") from None
    for s in seeds:
        if not 0 <= s <= SEED_MAX:
            raise UsageError(f"--seeds {s}: a seed must lie in 0..{SEED_MAX} (numpy's range), e.g. 0,1,2")
    streams = None if args.streams is None else _split(args.streams, "--streams")
    for s in streams or ():
        if s not in ("joint", "motion", "bone"):
            raise UsageError(f"--streams {s}: unknown stream; choose from joint, motion, bone")
    levels = None if args.levels is None else _split(args.levels, "--levels")
    for lv in levels or ():
        if lv not in LEVEL_SETS:
            raise UsageError(f"--levels {lv}: unknown level set; choose from {', '.join(LEVEL_SETS)}")
    if args.workers < 0:
        raise UsageError(f"--workers {args.workers}: give a number of processes >= 1, or 0 for auto")
    data: dict[str, str] = {}
    for item in args.data or ["synthetic"]:
        kind, _, folder = item.partition("=")
        if kind not in DATA_KINDS:
            raise UsageError(f"--data {item}: unknown data kind {kind!r}; use synthetic, ntu60=DIR, ntu120=DIR or pkummd=DIR")
        if kind == "synthetic":
            if folder:
                raise UsageError("--data synthetic takes no folder (use --cache-dir to move it)")
        else:
            if not folder:
                raise UsageError(f"--data {kind}: give the prepared cache folder, e.g. --data {kind}=/data/{kind}-cache")
            if not Path(folder).is_dir():
                raise UsageError(f"--data {item}: folder not found; prepare it with "
                                 f"'python -m datasets prepare {kind} --raw RAW --out {folder}'")
        data[kind] = folder
    if "synthetic" in data and len(data) > 1:
        raise UsageError("--data: synthetic cannot be mixed with real datasets; give either synthetic or real caches")
    overrides: dict[str, dict[str, str]] = {}
    for item in args.overrides:
        key, eq, value = item.partition("=")
        scope, dot, name = key.partition(".")
        if not eq or not dot or not name:
            raise UsageError(f"--set {item}: expected SCOPE.KEY=VALUE, e.g. recognition.epochs_pretrained=5")
        overrides.setdefault(scope, {})[name] = value
    return Options(methods=methods, tasks=tasks, profile=args.profile, data=data, fractions=fractions, seeds=seeds,
                   streams=streams, levels=levels, device=args.device, out=out, cache_dir=cache_dir,
                   fresh=args.fresh, compile=args.compile, dry_run=args.dry_run, deterministic=args.deterministic,
                   report=args.report, progress=args.progress, overrides=overrides,
                   task_all=args.task == "all", shard=_part(args.shard, "--shard"), workers=args.workers,
                   worker=_part(args.worker, "--worker"), precision=args.precision, smoke=args.smoke)


def _part(value: str, flag: str) -> tuple[int, int]:
    k, slash, n = value.partition("/")
    if not (slash and k.strip().isdigit() and n.strip().isdigit()) or not 1 <= int(k) <= int(n):
        raise UsageError(f"{flag} {value}: expected K/N with 1 <= K <= N, e.g. {flag} 2/4 for the second of four parts")
    return int(k), int(n)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
