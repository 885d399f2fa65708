"""``generate``: write the synthetic world in the real NTU RGB+D and PKU-MMD formats.

Every file draws from its own random stream keyed by (seed, what, which), so the output is
byte-identical for a seed whatever the order of generation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .actions import ACTION_SPECS, ACTIONS, FPS
from .perform import bystander, clip, video
from .sensor import Camera, body_ids, make_camera, ntu_rows, observe
from .skeleton import Subject, make_subject
from .writers import write_cross_subject, write_ntu, write_pku_labels, write_pku_skeleton

#: NTU-60 cross-subject training performers (spec/data.md); the others are test performers
NTU_TRAIN_PERFORMERS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU_TEST_PERFORMERS = (3, 6, 7, 10, 11, 12, 20, 21, 22, 23, 24, 26, 29, 30, 32, 33, 36, 37, 39, 40)
NTU_AZIMUTH = {1: -45.0, 2: 0.0, 3: 45.0}      # camera -> degrees; xview tests on camera 1
PKU_AZIMUTH = {"L": -45.0, "M": 0.0, "R": 45.0}  # xview tests on L
PKU_TRAIN_FIRST, PKU_TEST_FIRST = 2, 291         # video ids, as in the official numbering


@dataclass(frozen=True)
class SynthSize:
    """How much to generate. NTU: ``ntu_performances`` per class, each filmed by 3 cameras."""
    ntu_performances: int
    ntu_subjects: tuple[int, int]        # (train, test) performers
    setups: int
    pad: tuple[int, int]                 # idle frames before / after an NTU action
    pku_videos: tuple[int, int]          # (train, test) performances, each filmed from L, M, R
    pku_actions: tuple[int, int]         # actions per long video
    pku_gap: tuple[int, int]             # idle frames between actions


SIZES = {
    "small": SynthSize(4, (5, 3), 2, (4, 16), (5, 3), (5, 7), (20, 45)),
    "default": SynthSize(12, (14, 7), 4, (4, 24), (16, 8), (4, 8), (20, 60)),
    # the CPU `small` profile's world: half of default, short idle pads (the action starts early)
    "medium": SynthSize(6, (10, 5), 3, (4, 12), (8, 4), (5, 7), (20, 45)),
}


def _check_size(s: SynthSize) -> None:
    """Reject sizes that cannot give every class train and test data in both splits."""
    problems = []
    if s.ntu_performances < 2:
        problems.append("ntu_performances must be >= 2 (one train and one test performer per class)")
    if not (1 <= s.ntu_subjects[0] <= len(NTU_TRAIN_PERFORMERS) and 1 <= s.ntu_subjects[1] <= len(NTU_TEST_PERFORMERS)):
        problems.append(f"ntu_subjects must be (1..{len(NTU_TRAIN_PERFORMERS)}, 1..{len(NTU_TEST_PERFORMERS)})")
    if s.ntu_performances > 2 * s.setups * sum(s.ntu_subjects):
        problems.append("more performances per class than (performer, setup, replication) combinations")
    if min(s.pku_videos) < 1 or s.pku_videos[1] > 44 or s.pku_videos[0] > PKU_TEST_FIRST - PKU_TRAIN_FIRST:
        problems.append("pku_videos must be (1..289, 1..44) to fit the official video numbering")
    if s.pku_actions[0] < 1 or s.pku_actions[1] < s.pku_actions[0] or s.pku_gap[0] < 1 or s.pku_gap[1] < s.pku_gap[0]:
        problems.append("pku_actions and pku_gap must be increasing (low, high) ranges of positive ints")
    if s.pad[0] < 1 or s.pad[1] < s.pad[0]:
        problems.append("pad must be an increasing (low, high) range of positive ints")
    if problems:
        raise ValueError(f"invalid synthetic size {s}: " + "; ".join(problems))


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _duration(spec, subject: Subject, rng: np.random.Generator) -> int:
    return int(round(spec.frames * rng.uniform(0.8, 1.25) / subject.style["tempo"]))


def _clean(folder: Path, pattern: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(pattern):
        old.unlink()


def _ntu_body(view: dict, rng: np.random.Generator, hand_state: int) -> dict:
    body, joints = ntu_rows(view, hand_state)
    return {"present": view["present"], "ids": body_ids(view["new_id"], rng), "body": body, "joints": joints}


def _ntu(out: Path, size: SynthSize, seed: int) -> list[str]:
    """Clips named SsssCcccPpppRrrrAaaa.skeleton; returns the names written."""
    train = NTU_TRAIN_PERFORMERS[: size.ntu_subjects[0]]
    test = NTU_TEST_PERFORMERS[: size.ntu_subjects[1]]
    subjects = {p: make_subject(p, _rng(seed, 1, p)) for p in train + test}
    cams = {(s, c): make_camera(az, _rng(seed, 2, s, c)) for s in range(1, size.setups + 1)
            for c, az in NTU_AZIMUTH.items()}
    names = []
    for a, spec in enumerate(ACTION_SPECS):
        pick = _rng(seed, 3, a)
        combos = [(p, s, r) for p in train + test for s in range(1, size.setups + 1) for r in (1, 2)]
        order = [combos[i] for i in pick.permutation(len(combos))]
        first_test = next(c for c in order if c[0] in test)
        first_train = next(c for c in order if c[0] in train)
        chosen = [first_test, first_train] + [c for c in order if c not in (first_test, first_train)]
        for j, (p, s, r) in enumerate(chosen[: size.ntu_performances]):
            rng = _rng(seed, 4, a, j)
            group = test if p in test else train
            mates = [q for q in group if q != p] or [q for q in subjects if q != p]
            partner = subjects[int(rng.choice(mates))]
            n_act = _duration(spec, subjects[p], rng)
            pads = tuple(int(x) for x in rng.integers(size.pad[0], size.pad[1] + 1, 2))
            yaw = np.deg2rad((25.0 if r == 1 else -25.0) + rng.normal(0, 8))
            actors = clip(a, subjects[p], partner, n_act, pads, yaw, rng)
            if not spec.two_person and rng.random() < 0.05:
                total = len(actors[0].joints)
                lo = int(rng.integers(0, max(1, total - 10)))
                hi = min(total, lo + int(rng.integers(8, 30)))
                spot = (rng.choice([-1, 1]) * rng.uniform(1.1, 1.6), rng.uniform(0.5, 1.5))
                actors.append(bystander(subjects[int(rng.choice(group))], total, (lo, hi), spot, rng.normal(0, 0.5), rng))
            for c in NTU_AZIMUTH:
                view_rng = _rng(seed, 5, a, j, c)
                hand = int(view_rng.choice([1, 2]))
                bodies = [_ntu_body(observe(act, cams[(s, c)], view_rng), view_rng, hand) for act in actors]
                name = f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a + 1:03d}"
                write_ntu(out / f"{name}.skeleton", bodies)
                names.append(name)
    return names


def _pku_plan(n_videos: int, size: SynthSize, rng: np.random.Generator) -> list[list[int]]:
    """Action lists for a group of videos: shuffled rounds over all classes (sit down is always
    followed by stand up), at least one full round so every class occurs in the group."""
    sit, stand = ACTIONS.index("sit down"), ACTIONS.index("stand up")
    units = [[a] for a in range(len(ACTIONS)) if a not in (sit, stand)] + [[sit, stand]]
    counts = rng.integers(size.pku_actions[0], size.pku_actions[1] + 1, n_videos)
    while counts.sum() < len(ACTIONS):
        counts[np.argmin(counts)] += 1
    stream = [u for _ in range(int(counts.sum()) // len(units) + 2) for u in (units[i] for i in rng.permutation(len(units)))]
    plans, pos = [], 0
    for k in counts:
        plan = []
        while len(plan) < k:
            plan += stream[pos]
            pos += 1
        plans.append(plan)
    return plans


def _pku(out: Path, size: SynthSize, seed: int) -> tuple[list[str], list[str]]:
    """Long videos with label files; returns (train names, test names)."""
    skel, labels = out / "PKU_Skeleton_Renew", out / "Train_Label_PKU_final"
    n_train, n_test = size.pku_videos
    names: dict[str, list[str]] = {"train": [], "test": []}
    for group, n_videos, first in (("train", n_train, PKU_TRAIN_FIRST), ("test", n_test, PKU_TEST_FIRST)):
        g = 0 if group == "train" else 1
        people = [make_subject(100 * (g + 1) + i, _rng(seed, 6, g, i)) for i in range(max(2, (n_videos + 1) // 2 + 1))]
        plans = _pku_plan(n_videos, size, _rng(seed, 7, g))
        for v, plan in enumerate(plans):
            rng = _rng(seed, 8, g, v)
            main = v % (len(people) - 1)
            others = [people[i] for i in range(len(people)) if i != main]
            partners = [others[int(i)] for i in rng.integers(0, len(others), len(plan))]
            lengths = [_duration(ACTION_SPECS[a], people[main], rng) for a in plan]
            gaps = [int(x) for x in rng.integers(size.pku_gap[0], size.pku_gap[1] + 1, len(plan) + 1)]
            actors, rows = video(plan, people[main], partners, gaps, lengths, np.deg2rad(rng.normal(0, 10)), rng)
            conf = np.where(rng.random(len(rows)) < 0.8, 2, 1)
            vid = first + v
            for view, az in PKU_AZIMUTH.items():
                view_rng = _rng(seed, 9, g, v, ord(view))
                cam: Camera = make_camera(az, view_rng, distance=(2.4, 3.2))
                xyz = np.zeros((len(actors[0].joints), 2, 25, 3))
                for slot, act in ((0, actors[0]),) + tuple((1, a) for a in actors[1:]):
                    seen = observe(act, cam, view_rng)
                    xyz[seen["present"], slot] = seen["xyz"][seen["present"]]
                name = f"{vid:04d}-{view}"
                write_pku_skeleton(skel / f"{name}.txt", xyz)
                write_pku_labels(labels / f"{name}.txt", np.column_stack([rows, conf]))
                names[group].append(name)
    return names["train"], names["test"]


def _readme(size_name: str, seed: int, ntu_names: list[str] | None, pku: tuple[list[str], list[str]] | None) -> str:
    classes = "\n".join(f"  {i + 1:2d}  {n}{'  (two-person)' if ACTION_SPECS[i].two_person else ''}"
                        for i, n in enumerate(ACTIONS))
    parts = []
    if ntu_names is not None:
        parts.append(f"""ntu/      {len(ntu_names)} NTU RGB+D .skeleton files SsssCcccPpppRrrrAaaa (action = class + 1).
          Cross-subject: NTU-60 training performers ({', '.join(map(str, NTU_TRAIN_PERFORMERS))}) train,
          others test. Cross-view: camera 1 test, cameras 2 and 3 train.
          Cameras 1/2/3 at azimuths {NTU_AZIMUTH[1]:+.0f}/{NTU_AZIMUTH[2]:+.0f}/{NTU_AZIMUTH[3]:+.0f} degrees, 3-4 m away.
""")
    if pku is not None:
        parts.append(f"""pkummd/   {len(pku[0]) + len(pku[1])} PKU-MMD-layout long videos: PKU_Skeleton_Renew/XXXX-V.txt (150 floats a
          frame) and Train_Label_PKU_final/XXXX-V.txt (label 1..{len(ACTIONS)},start,end,confidence; end
          exclusive). cross-subject.txt: {len(pku[0])} training / {len(pku[1])} test videos.
          Views L/M/R at azimuths {PKU_AZIMUTH['L']:+.0f}/{PKU_AZIMUTH['M']:+.0f}/{PKU_AZIMUTH['R']:+.0f} degrees; cross-view tests on L.
""")
    regen = (f"Regenerate with: python -m datasets synth --out DIR --seed {seed} --size {size_name}"
             if size_name in SIZES else "Generated with a custom SynthSize (datasets.synthetic.generate).")
    return f"""Synthetic skeleton world (datasets.synthetic), size={size_name!r}, seed={seed}.
Generated data, not recordings: a kinematic 25-joint Kinect skeleton driven by joint-angle
trajectories, seen by simulated Kinect v2 sensors (noise, lost bodies, collapsed joints).
{regen}

{"".join(parts)}
Classes (PKU-layout label; NTU-layout 0-based label = number - 1):
{classes}
Frame rate {FPS:.0f} fps, coordinates in metres, camera space (+y up, z away from the sensor).
"""


PARTS = ("ntu", "pkummd")


def generate(out_dir, *, seed: int = 0, size: str | SynthSize = "small", parts=PARTS) -> Path:
    """Write the synthetic world under ``out_dir`` (ntu/, pkummd/, README.txt) and return it.

    ``size``: "small" (CI), "medium" (the CPU ``small`` profile) or "default", or a custom
    ``SynthSize``; ``parts``: which layouts to write (both by default). Deterministic: the same
    seed and size give byte-identical files, and each part is independent of the other. Files
    from an earlier run in these folders are replaced.
    """
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {tuple(parts)!r}")
    if isinstance(size, SynthSize):
        spec, size_name = size, "custom"
    elif size in SIZES:
        spec, size_name = SIZES[size], size
    else:
        raise ValueError(f"unknown synthetic size {size!r}; choose one of {', '.join(SIZES)} (or pass a SynthSize)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _check_size(spec)
    out = Path(out_dir)
    ntu_names, pku = None, None
    if "ntu" in parts:
        _clean(out / "ntu", "*.skeleton")
        ntu_names = _ntu(out / "ntu", spec, int(seed))
    if "pkummd" in parts:
        for sub in ("PKU_Skeleton_Renew", "Train_Label_PKU_final"):
            _clean(out / "pkummd" / sub, "*.txt")
        pku = _pku(out / "pkummd", spec, int(seed))
        write_cross_subject(out / "pkummd" / "cross-subject.txt", *pku)
    (out / "README.txt").write_text(_readme(size_name, int(seed), ntu_names, pku))
    return out
