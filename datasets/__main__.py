"""Command line: ``python -m datasets {prepare,synth,info} ...`` (see docs/data.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m datasets", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="convert a raw dataset folder into a cache")
    p.add_argument("kind", choices=["ntu60", "ntu120", "pkummd", "synthetic"])
    p.add_argument("--raw", required=True, type=Path,
                   help="the raw dataset folder; for ntu60 / ntu120 also (recognised by content) PYSKL's "
                        "ntu60_3danno.pkl, MMAction2's ntu60_3d.pkl, CTR-GCN's NTU60_CS.npz (or their folder), "
                        "st-gcn / CrosSCLR / frame50 / Hi-TRS array folders (docs/data.md)")
    p.add_argument("--out", required=True, type=Path, help="the cache folder to write")
    p.add_argument("--missing", type=Path, default=None,
                   help="NTU missing-skeleton list (sample names, one per line); default: any "
                        "*missing*.txt directly inside --raw")
    p.add_argument("--pku-split", type=Path, default=None,
                   help="PKU-MMD cross-subject.txt (default: found under --raw)")
    p.add_argument("--workers", type=int, default=None, help="parallel reader processes")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    s = sub.add_parser("synth", help="generate the synthetic skeleton world (raw files)")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", choices=["small", "medium", "default"], default="small")
    i = sub.add_parser("info", help="summarise a prepared cache")
    i.add_argument("cache", type=Path)
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "prepare":
            from ._malloc import tune_malloc
            from .prepare_cache import prepare

            tune_malloc()  # this process is ours: keep freed memory (see datasets/_malloc.py)

            prepare(args.kind, args.raw, args.out, progress=not args.no_progress, missing=args.missing,
                    pku_split=args.pku_split, workers=args.workers, force=args.force)
        elif args.command == "synth":
            from .synthetic import generate  # lazily: the synthetic world is its own module

            out = generate(args.out, seed=args.seed, size=args.size)
            print(f"synthetic world (size {args.size}, seed {args.seed}) written to {out}")
        else:
            from .cache import open_cache

            c = open_cache(args.cache)
            print(repr(c))
            print(f"classes: {c.num_classes}; splits: {', '.join(c.splits)}")
            for s in c.splits:
                print(f"  {s}: {len(c.indices(s, 'train'))} train / {len(c.indices(s, 'test'))} test")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. disk full or permissions changing mid-run: one line, not a traceback
        print(f"error: {err.filename or ''}: {err.strerror or err}; check the folder and free space, then "
              "run the command again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
