"""Everything the tests share, in one place: where ../shared and the test caches live, small
files in the real formats, toy skeleton inputs, and records written the way runs write them.

The format writers are deliberately plain (loops, f-strings): they are the independent statement
of the formats the vectorised readers must accept.
"""
from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from reports import paper_numbers

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
LEVELS = paper_numbers.LEVEL_SETS
# the synthetic world the end-to-end tests share: generated once per test session in a temporary
# folder (tests/conftest.py), never the checkout's .cache, so a stale world cannot leak in
CACHE = Path(os.environ.get("HITRS_TEST_CACHE", ROOT / ".cache"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the real fixtures / golden files live in ../shared next to the checkout "
                    "(research-licensed, never copied into the repository)")
    return path


def spawn_ranks(worker, world: int, out: Path) -> list[dict]:
    """Run ``worker(rank, port, out_dir)`` in ``world`` gloo processes; each saves
    ``out/rank<r>.pt``, returned in rank order (skips where torch.distributed is absent)."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(world)]


def free_port() -> int:
    """A TCP port nobody listens on now (for torchrun's rendezvous in end-to-end tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- files in the real formats ---------------------------------------------------------------
def ntu_text(xyz_per_frame, body_ids=None, *, newline="\n", exp_every=0) -> str:
    """xyz_per_frame: list over frames of arrays (bodies, 25, 3). Real field layout, plausible
    values in the other fields; ``exp_every=k`` writes every k-th x in E-notation."""
    lines = [str(len(xyz_per_frame))]
    count = 0
    for t, bodies in enumerate(xyz_per_frame):
        lines.append(str(len(bodies)))
        for m, joints in enumerate(bodies):
            bid = body_ids[t][m] if body_ids is not None else 72057594037931101 + m
            lines.append(f"{bid} 0 1 1 1 1 0 0.02764709 0.05745083 2")
            lines.append("25")
            for j, (x, y, z) in enumerate(joints):
                count += 1
                xs = f"{x:.6E}" if exp_every and count % exp_every == 0 else f"{x:.7g}"
                lines.append(f"{xs} {y:.7g} {z:.7g} 277.419 191.8218 1036.233 519.1677 "
                             f"-0.2059419 0.05349901 0.9692109 -0.1239193 2")
    return newline.join(lines) + newline


def random_ntu_frames(rng, n_frames, bodies_per_frame=None):
    """Random camera-like skeletons, rounded to what 7 significant digits can hold."""
    if bodies_per_frame is None:
        bodies_per_frame = [1] * n_frames
    frames = []
    for nb in bodies_per_frame:
        arr = rng.normal(0.0, 0.3, size=(nb, 25, 3)) + np.array([0.0, 0.2, 3.5])
        frames.append(np.array([[[float(f"{v:.7g}") for v in joint] for joint in body] for body in arr]))
    return frames


def expected_ntu_array(frames, max_bodies=2):
    out = np.zeros((len(frames), max_bodies, 25, 3), dtype=np.float32)
    for t, bodies in enumerate(frames):
        for m, joints in enumerate(bodies[:max_bodies]):
            out[t, m] = joints
    return out


def pku_text(x: np.ndarray, *, leading_space=True) -> str:
    """x: (T, 2, 25, 3) -> one line of 150 numbers per frame."""
    pre = " " if leading_space else ""
    return "".join(pre + " ".join(f"{v:.6f}" for v in frame.ravel()) + "\n" for frame in x)


def pku_labels_text(rows) -> str:
    return "".join(",".join(str(int(v)) for v in r) + "\n" for r in rows)


def pku_split_text(train, test) -> str:
    return f"Training videos: \n{', '.join(train)}\nValidataion videos: \n{', '.join(test)}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def simple_read_ntu(path, max_bodies=2) -> np.ndarray:
    """A plain line-by-line reader (x, y, z only): the baseline the fast reader is checked against."""
    with open(path) as f:
        num_frames = int(f.readline())
        out = np.zeros((num_frames, max_bodies, 25, 3), np.float32)
        for t in range(num_frames):
            for m in range(int(f.readline())):
                f.readline()
                for j in range(int(f.readline())):
                    vals = f.readline().split()
                    if m < max_bodies:
                        out[t, m, j] = [float(v) for v in vals[:3]]
    return out


# ---- small raw dataset folders -----------------------------------------------------------------
NTU_NAMES = ["S001C001P001R001A001", "S001C002P003R001A001", "S001C003P002R002A002", "S002C001P004R001A002",
             "S002C002P001R002A003", "S003C003P003R001A003", "S018C001P045R001A061"]


def make_ntu_raw(root, *, with_bad=True):
    """7 good files (one NTU-120 only), one two-person file, plus bad ones and a missing list."""
    rng = np.random.default_rng(0)
    frames = {}
    for k, name in enumerate(NTU_NAMES):
        nb = [2 if (k == 2 and t % 3 == 0) else 1 for t in range(20 + 5 * k)]
        frames[name] = random_ntu_frames(rng, len(nb), nb)
        write(root / "nturgb+d_skeletons" / f"{name}.skeleton", ntu_text(frames[name]))
    # listed as missing (its file has no body at all)
    write(root / "nturgb+d_skeletons" / "S001C002P005R002A008.skeleton", "2\n0\n0\n")
    write(root / "NTU_RGBD_samples_with_missing_skeletons.txt", "S001C002P005R002A008\n")
    if with_bad:
        write(root / "nturgb+d_skeletons" / "S003C001P001R001A004.skeleton", ntu_text(frames[NTU_NAMES[0]])[:500])
        write(root / "nturgb+d_skeletons" / "S003C001P002R001A004.skeleton", "3\n0\n0\n0\n")
        write(root / "nturgb+d_skeletons" / "notes.skeleton", "1\n0\n")
    return frames


def make_pku_raw(root, n_videos=4):
    rng = np.random.default_rng(1)
    data, rows = {}, {}
    names = []
    for v in range(n_videos):
        for view in "LMR":
            name = f"{2 + v:04d}-{view}"
            length = 60 + 10 * v
            x = np.round(rng.normal(size=(length, 2, 25, 3)), 5)
            x[:, 1] = 0 if v % 2 else x[:, 1]
            r = [[1 + v, 5, 20, 1], [3, 25, 40, 2], [2, length - 5, length + 10, 1]]
            write(root / "PKU_Skeleton_Renew" / f"{name}.txt", pku_text(x))
            write(root / "Train_Label_PKU_final" / f"{name}.txt", pku_labels_text(r))
            data[name], rows[name] = x, r
            names.append(name)
    write(root / "cross-subject.txt", pku_split_text([n for n in names if not n.startswith("0002")],
                                                     [n for n in names if n.startswith("0002")]))
    write(root / "PKU_Skeleton_Renew" / "0100-M.txt", pku_text(np.ones((5, 2, 25, 3))))  # no label file
    return data, rows


# ---- toy skeleton inputs for the method tests ----------------------------------------------------
def toy_skeletons(n, seed=0, t_max=100, classes=6):
    """Class-specific oscillations of a fixed rest pose, 3.8 m from the camera, zero-padded."""
    g = torch.Generator().manual_seed(seed)
    rest = torch.randn(25, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.2, 3.8])
    label = torch.arange(n) % classes
    direction = torch.randn(classes, 25, 3, generator=g) * 0.15
    freq = 0.5 + torch.rand(classes, generator=g) * 2.5
    lengths = torch.randint(t_max // 2, t_max + 1, (n,), generator=g)
    t = torch.arange(t_max).float()[None, :] / 30.0
    wave = torch.sin(2 * math.pi * freq[label][:, None] * t + torch.rand(n, 1, generator=g) * 6.28)
    x = torch.zeros(n, t_max, 2, 25, 3)
    x[:, :, 0] = rest + wave[:, :, None, None] * direction[label][:, None] \
        + 0.01 * torch.randn(n, t_max, 25, 3, generator=g)
    return x * (torch.arange(t_max)[None, :] < lengths[:, None])[:, :, None, None, None], lengths


def pretraining_steps(model, x, lengths, seed: int = 1) -> list[tuple[float, dict]]:
    """Run ``model.config.loop.steps`` optimizer steps the way the engine does (hooks, scheduler)
    on random batches of ``x``; returns each step's (loss, logs)."""
    steps, batch = model.config.loop.steps, model.config.loop.batch_size
    opt, sched = model.configure_pretraining()
    order = torch.Generator().manual_seed(seed)
    out = []
    model.train()
    for step in range(steps):
        model.on_step_start(step, steps)
        idx = torch.randperm(len(x), generator=order)[:batch]
        loss, logs = model.pretrain_loss(x[idx], lengths[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        model.after_optimizer_step()
        out.append((float(loss.detach()), logs))
    return out


def lr_trace(model, steps: int) -> list[float]:
    """The learning rate of each of ``steps`` optimizer steps of ``model.configure_pretraining()``."""
    optimizer, scheduler = model.configure_pretraining()
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


# ---- record / artifact generator (used by the other test_reports_* modules too) --------------
_POSE = np.array([  # rough standing NTU skeleton, millimetres, joints 1..25 (x right, y up, z depth)
    (0, 0), (0, 250), (0, 580), (0, 680), (-170, 480), (-200, 230), (-210, 0), (-215, -70), (170, 480), (200, 230),
    (210, 0), (215, -70), (-90, -20), (-100, -420), (-105, -820), (-110, -880), (90, -20), (100, -420), (105, -820),
    (110, -880), (0, 500), (-220, -140), (-180, -90), (220, -140), (180, -90)], dtype=float)
ROWS_T1 = {"MCC": ("mcc", "mcc", "joint", None), "CrosSCLR-3S": ("crossclr", "crossclr-3s", "3s", None),
           "Hi-TRS": ("hitrs", "hitrs", "joint", "F+C+V"), "Hi-TRS-3s": ("hitrs", "hitrs-3s", "3s", "F+C+V")}
ROWS_T2 = {"MCC": ("mcc", "mcc", "joint", None), "CrosSCLR": ("crossclr", "crossclr", "joint", None),
           "Hi-TRS": ("hitrs", "hitrs", "joint", "F+C+V")}


def _motion(rng, frames=75):
    """(frames, 25, 3) skeleton raising its right arm (joints 10-12, 24, 25 rotate about 9)."""
    t = np.linspace(0, 1, frames)[:, None]
    xyz = np.concatenate([_POSE, np.zeros((25, 1))], axis=1)[None].repeat(frames, 0)
    ang = (np.pi * 0.8 * t + rng.normal(0, 0.02))[:, :, None]  # (T, 1, 1)
    arm = [9, 10, 11, 23, 24]
    rel = xyz[:, arm, :2] - xyz[:, [8], :2]
    c, s = np.cos(ang), np.sin(ang)
    xyz[:, arm, 0] = xyz[:, [8], 0] + c[..., 0] * rel[..., 0] + s[..., 0] * rel[..., 1]
    xyz[:, arm, 1] = xyz[:, [8], 1] - s[..., 0] * rel[..., 0] + c[..., 0] * rel[..., 1]
    return xyz + rng.normal(0, 3, xyz.shape)


class Results:
    """Writes records (and artifacts) into ``root`` the way records.md describes them."""

    def __init__(self, root: Path, dataset_det="synthetic-pkummd", dataset_pred="synthetic-ntu", profile="ci"):
        self.root, self.det, self.pred, self.profile = root, dataset_det, dataset_pred, profile
        self.records: list[dict] = []
        self.rng = np.random.default_rng(0)
        self._n = 0

    def add(self, method, variant, stream, levels, task, fraction, seed, metrics, *, dataset=None, profile=None,
            finished="2026-11-26T20:00:00Z", artifacts=None, pretrain=None, split="xsub"):
        self._n += 1
        run_id = f"r{self._n:04d}-{variant}-{task}"
        rec = {"record_version": 1, "run_id": run_id, "method": method, "variant": variant, "stream": stream,
               "levels": levels, "task": task,
               "dataset": dataset or (self.det if task == "detection" else self.pred), "split": split,
               "label_fraction": fraction, "seed": seed, "profile": profile or self.profile, "metrics": metrics,
               "config": {"method": method, "task": task, "lr": 4e-4, "stream": stream},
               "config_sha256": f"{abs(hash((method, task, stream))):064x}"[:64],
               "subset": {"path": "subsets/x.txt", "sha256": "ab" * 32, "count": 10},
               "pretrain": pretrain,
               "provenance": {"git_commit": "0123456789abcdef" * 2 + "01234567", "git_dirty": False, "torch": "2.13.0",
                              "cuda": None, "device": "cpu (x86_64, 2 cores)", "world_size": 1, "wall_time_s": 1.5,
                              "samples_per_s": 100.0, "hostname": "h", "started_at": finished, "finished_at": finished,
                              "python": "3.11.7"},
               "artifacts": artifacts or {}}
        path = self.root / "records" / f"{run_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
        self.records.append(rec)
        return rec

    def timelines(self, run_id, quality):
        rng = np.random.default_rng(7)  # same test videos for every method
        out = {"names": np.array(["0291-M", "0292-L", "0300-R"]), "num_classes": np.array(51)}
        for i in range(3):
            gt = np.zeros(600, dtype=np.int64)
            for s in range(40, 560, 130):
                gt[s:s + rng.integers(50, 90)] = rng.integers(1, 52)
            pred = gt.copy()
            shift = int(30 * (1 - quality))
            pred = np.roll(pred, shift)
            flip = self.rng.random(600) > quality + 0.1
            pred[flip & (pred != 0)] = 7
            out[f"gt_{i}"], out[f"pred_{i}"] = gt, pred
        path = self.root / "artifacts" / run_id / "timelines.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
        return str(path.relative_to(self.root))

    def predictions(self, run_id, error_mm):
        rng = np.random.default_rng(3)
        seqs = np.stack([_motion(rng) for _ in range(4)])  # (S, 75, 25, 3)
        noise = self.rng.normal(0, 1, (4, 25, 25, 3)) * error_mm * np.linspace(0.2, 1.5, 25)[None, :, None, None]
        out = {"observed": seqs[:, :50], "target": seqs[:, 50:], "predicted": seqs[:, 50:] + noise,
               "horizons": np.array([3, 6, 12, 18, 25])}
        path = self.root / "artifacts" / run_id / "predictions.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
        return str(path.relative_to(self.root))

    def pretrain_log(self, pid, tasks):
        path = self.root / "pretrain" / pid / "pretrain.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        steps = np.arange(0, 200, 5)
        lines = []
        for s in steps:
            per = {f"{t}/loss": float((i + 1) * np.exp(-s / (60 + 30 * i)) + 0.05 * self.rng.random())
                   for i, t in enumerate(tasks)}
            lines.append(json.dumps({"step": int(s), "lr": 1e-3, "loss": sum(per.values()), **per}))
        path.write_text("\n".join(lines) + "\n")
        return {"id": pid, "checkpoint": f"pretrain/{pid}/encoder.pt", "log": str(path), "steps": 200}


def make_results(root: Path, seeds=(0, 1, 2), skip=(), artifacts=True, **kw) -> Results:
    """Detection rows of Tables 1 and 3, prediction rows of Table 2, artifacts for seed 0.

    ``skip``: (variant, task, fraction, levels) tuples not to write (missing runs);
    ``artifacts=False`` writes records only (no timelines, predictions, logs: a faster build).
    """
    res = Results(root, **kw)
    rng = np.random.default_rng(1)
    logs = {"hitrs": res.pretrain_log("hitrs-p0", ["mjp", "fov", "cov", "ncp"]),
            "mcc": res.pretrain_log("mcc-p0", ["mcc"]),
            "crossclr": res.pretrain_log("crossclr-p0", ["moco", "cross"])} if artifacts else {}
    det = [(name, *ROWS_T1[name]) for name in ROWS_T1] + [("Hi-TRS", "hitrs", t3_variant(lv), "joint", lv)
                                                          for lv in LEVELS if lv != "F+C+V"]
    for i, (row, method, variant, stream, levels) in enumerate(det):
        for frac in ((1.0, 0.1) if levels in (None, "F+C+V") else (1.0,)):
            if (variant, "detection", frac, levels) in skip:
                continue
            for seed in seeds:
                base = 20 + 3 * i + (10 if frac == 1.0 else 0)
                arts = {}
                if seed == seeds[0] and frac == 1.0 and levels in (None, "F+C+V"):
                    arts = {"timelines": None}
                rec = res.add(method, variant, stream, levels, "detection", frac, seed,
                              {"mAP_a": base + rng.normal(0, 1), "mAP_v": base + 5 + rng.normal(0, 1),
                               "f1": base, "ap_all": base},
                              pretrain=logs.get(method) if stream != "3s" else None)
                if arts and artifacts:
                    rec["artifacts"] = {"timelines": res.timelines(rec["run_id"], 0.5 + 0.1 * i)}
                    (root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    for i, (row, (method, variant, stream, levels)) in enumerate(ROWS_T2.items()):
        for frac in (1.0, 0.1):
            if (variant, "prediction", frac, levels) in skip:
                continue
            for seed in seeds:
                err = 120 - 10 * i + (0 if frac == 1.0 else 20)
                rec = res.add(method, variant, stream, levels, "prediction", frac, seed,
                              {"mpjpe": err + rng.normal(0, 2), **{f"mpjpe@{h}": err * h / 15 for h in (3, 6, 12, 18, 25)}},
                              pretrain=logs.get(method))
                if seed == seeds[0] and frac == 1.0 and artifacts:
                    rec["artifacts"] = {"predictions": res.predictions(rec["run_id"], err / 3)}
                    (root / "records" / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    return res


def t3_variant(levels: str) -> str:
    """Table 3's '-' column is Hi-TRS at random initialisation (variant ``hitrs-random``)."""
    return "hitrs-random" if levels == "-" else "hitrs"


class ToyCache:
    """A stand-in for a prepared cache: 24 random single-body sequences of 40 frames."""

    dataset = "toy"

    def __init__(self, n=24, t=40):
        import pandas as pd
        rng = np.random.default_rng(0)
        self.seqs = (rng.normal(size=(n, t, 2, 25, 3)) * 0.2).astype(np.float32)
        self.seqs[:, :, 1] = 0
        self.manifest = pd.DataFrame({"name": [f"s{i}" for i in range(n)], "length": t, "bodies": 1, "label": 0})
        self.offsets = np.arange(n + 1) * t

    def gather(self, index):
        return self.seqs.reshape(-1, 2, 25, 3)[index]
