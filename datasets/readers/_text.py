"""Vectorised tokenising and number parsing of whole text files with numpy.

Why: the raw datasets are ~100k small text files; a Python loop per line (or per token
``float()``) dominates preparation time. Here one pass over the file's bytes finds every
token and line, and numbers are parsed column-by-column over all tokens at once (a loop over
character POSITIONS, at most ~20, never over tokens or lines).

Grammar accepted for a number: ``[+-]digits[.digits][(e|E)[+-]digits]`` (a leading or trailing
dot is fine: ``.5``, ``5.``). Mantissas of up to 15 digits (all the real data) are accumulated exactly in integers and
scaled by an exact power of ten, so results equal Python's ``float()``; longer mantissas and
huge exponents go through numpy's (correctly rounded) string conversion, still vectorised.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SkeletonFormatError


# Size caps, far above any real file (NTU .skeleton <= ~10 MB with lines < 200 bytes; PKU-MMD
# skeletons ~10 MB with lines ~2 KB): a huge or binary file is refused before it is tokenised
# (tokenising holds ~16 bytes per input byte).
MAX_FILE_BYTES = 64 * 2**20
MAX_LINE_BYTES = 64 * 2**10


def read_bytes(path, max_bytes: int | None = None) -> bytes:
    """A raw file's bytes, or SkeletonFormatError naming it when it is not a readable file or
    larger than ``max_bytes`` (checked before reading)."""
    p = Path(path)
    if not p.is_file():
        raise SkeletonFormatError(p, None, "file not found" if not p.exists() else "not a regular file",
                                  "check the path")
    size, max_bytes = p.stat().st_size, max_bytes or MAX_FILE_BYTES
    if size > max_bytes:
        raise SkeletonFormatError(p, None, f"{size / 2**20:.0f} MiB, larger than the {max_bytes / 2**20:.0f} MiB "
                                  "any real file of this format has", "not a skeleton / label file; remove it")
    return p.read_bytes()


def check_line_lengths(raw: bytes, path: str, max_line: int | None = None) -> np.ndarray:
    """Offsets of the newlines of ``raw``; SkeletonFormatError naming the first line longer than
    ``max_line`` bytes."""
    max_line = max_line or MAX_LINE_BYTES
    data = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    bounds = np.concatenate([[-1], newlines, [len(data)]])
    long = np.flatnonzero(np.diff(bounds) - 1 > max_line)
    if len(long):
        k = int(long[0])
        raise SkeletonFormatError(path, k + 1, f"a line of {int(bounds[k + 1] - bounds[k] - 1):,} bytes, longer "
                                  f"than the {max_line:,} any real file of this format has",
                                  "the file is corrupt or not in this format")
    return newlines

_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True
_NUMERIC = np.zeros(256, dtype=bool)
_NUMERIC[list(b"0123456789+-.eE")] = True
_NOT_NUMERIC = ~(_NUMERIC | _WS)    # includes control bytes other than blanks
_ALLOWED = bytes(np.flatnonzero(~_NOT_NUMERIC).astype(np.uint8))
_POW10 = 10.0 ** np.arange(0, 23)
_INT64_MAX = np.iinfo(np.int64).max
_MAX_TOKEN = 40
_COLS = np.arange(_MAX_TOKEN, dtype=np.int64)
_COLS_U8 = np.arange(_MAX_TOKEN, dtype=np.uint8)
_BLOCK_TOKENS, _BLOCK_BYTES = 8192, 131072   # per parse block (see parse_tokens)
_SPLIT_OVERHEAD = 20000   # one extra parse call costs about as much as this many characters


@dataclass
class Tokens:
    """Token and line layout of one text file (0-based lines)."""

    path: str
    data: np.ndarray        # uint8 bytes of the file
    start: np.ndarray       # int64 byte offset of each token
    end: np.ndarray         # int64 byte offset one past each token
    line_first: np.ndarray  # int64 index of the first token of each line
    line_count: np.ndarray  # int64 number of tokens on each line
    newlines: np.ndarray    # int64 byte offsets of b"\n"
    padded: np.ndarray      # data + blanks, so fixed-width windows never run off the end

    @property
    def n_lines(self) -> int:
        return len(self.line_count)

    def line_of_byte(self, pos: int) -> int:
        """1-based line number of byte ``pos``."""
        return int(np.searchsorted(self.newlines, pos, side="right")) + 1

    def line_of_token(self, tok: int) -> int:
        return self.line_of_byte(int(self.start[tok]))

    def text(self, tok: int) -> str:
        return bytes(self.data[self.start[tok]:self.end[tok]]).decode("latin-1")


def scan(raw: bytes, path: str, *, numeric_only: bool = True, separators: bytes = b"") -> Tokens:
    """Find tokens and lines in ``raw``; optionally reject any byte that cannot be in a number.

    ``separators`` are extra bytes treated as whitespace (e.g. b"," for PKU label files).
    """
    newlines = check_line_lengths(raw, path)
    padded = np.frombuffer(raw + b" " * (_MAX_TOKEN + 1), dtype=np.uint8)
    n = len(raw)
    data = padded[:n]
    ws = np.empty(n + 2, dtype=bool)
    ws[0] = ws[-1] = True
    np.less_equal(data, 32, out=ws[1:-1])            # blanks and control characters
    for sep in separators:
        ws[1:-1] |= data == sep
    edges = np.flatnonzero(ws[1:] != ws[:-1])       # alternating token starts and ends
    start = edges[0::2]
    end = edges[1::2]
    # token index of each line's first token; a final line without "\n" counts too
    line_ends = np.append(newlines, n) if (n == 0 or data[-1] != 10) else newlines
    first_after = np.searchsorted(start, line_ends, side="left")
    line_first = np.concatenate([[0], first_after[:-1]]).astype(np.int64)
    line_count = (first_after - line_first).astype(np.int64)
    tokens = Tokens(path, data, start, end, line_first, line_count, newlines, padded)
    if numeric_only:
        if raw.translate(None, _ALLOWED + bytes(separators)):
            not_numeric = _NOT_NUMERIC.copy()
            not_numeric[list(separators)] = False
            bad = np.flatnonzero(not_numeric[data])
            tok = int(np.searchsorted(start, bad[0], side="right")) - 1
            if tok < 0 or bad[0] >= end[tok]:   # a control character between tokens
                raise SkeletonFormatError(path, tokens.line_of_byte(int(bad[0])),
                                          f"unexpected control byte 0x{int(data[bad[0]]):02x}",
                                          "the file is binary or corrupt")
            raise_bad_token(tokens, tok)
    return tokens


def raise_bad_token(tokens: Tokens, tok: int, expected: str = "a number"):
    text = tokens.text(tok)
    line = tokens.line_of_token(tok)
    low = text.lower().lstrip("+-")
    if low in ("nan", "inf", "infinity") or low.startswith("1.#"):
        raise SkeletonFormatError(tokens.path, line, f"non-finite value {text!r} (NaN/inf)",
                                  "the file is corrupt; re-extract it or list it as bad")
    raise SkeletonFormatError(tokens.path, line, f"expected {expected}, found {text[:40]!r}",
                              "the file is corrupt or not in this format")


_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _parse_long(tokens: Tokens, tok: int) -> float:
    """A token longer than _MAX_TOKEN characters (never in real skeleton files)."""
    text = tokens.text(tok)
    if not _NUMBER_RE.fullmatch(text):
        raise_bad_token(tokens, tok)
    value = float(text)
    if not np.isfinite(value):
        raise SkeletonFormatError(tokens.path, tokens.line_of_token(tok), f"non-finite value {text[:40]!r}",
                                  "the file is corrupt; re-extract it or list it as bad")
    return value


def _char_matrix(tokens: Tokens, idx: np.ndarray):
    """(W, n) uint8 characters of the tokens ``idx``, blank beyond each token, and lengths.

    Column-major on purpose: every later reduction runs over W (< 40) rows of n contiguous
    values, which numpy does as a few vector operations.
    """
    start = tokens.start[idx]
    length = tokens.end[idx] - start
    width = int(length.max())
    chars = np.empty((width, len(idx)), dtype=np.uint8)
    for k in range(width):  # one gather per character position
        np.take(tokens.padded, start + k, out=chars[k])
    np.putmask(chars, _COLS[:width, None] >= length[None, :], np.uint8(32))
    return chars, length, width


@dataclass
class Parsed:
    value: np.ndarray      # float64
    integer: np.ndarray    # int64 (exact for integer tokens of <= 18 digits)
    is_int: np.ndarray     # bool: digits only (optional sign), fits int64


def parse_tokens(tokens: Tokens, idx: np.ndarray) -> Parsed:
    """Parse the tokens ``idx`` with the grammar above; any other token raises.

    Tokens are grouped by length (a few 17-digit body ids must not widen the matrix of all the
    7-digit coordinates) and parsed in blocks of at most 8k tokens / 128 KiB of characters,
    which bounds the memory for long files while keeping the number of array calls small.
    """
    idx = np.asarray(idx, dtype=np.int64)
    n = len(idx)
    out = Parsed(np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))
    if n == 0:
        return out
    length = tokens.end[idx] - tokens.start[idx]
    huge = length > _MAX_TOKEN
    groups = []
    if huge.any():  # e.g. '%.3f' of 1e36: never in skeleton files, parsed one by one
        for r in np.flatnonzero(huge):
            out.value[r] = _parse_long(tokens, int(idx[r]))
        groups.append(np.flatnonzero(~huge))
    else:
        groups.append(np.arange(n))
    group = groups.pop()
    if len(group) > 1000:
        glen = length[group]
        cum = np.cumsum(np.bincount(glen))              # tokens of length <= w, per w
        widths = np.arange(len(cum))
        cost = cum * widths + (len(group) - cum) * (len(cum) - 1) + _SPLIT_OVERHEAD * (cum < len(group))
        common = int(np.argmin(cost))
        long = glen > common
        if common < len(cum) - 1 and long.any():
            groups += [group[~long], group[long]]
            group = None
    if group is not None:
        groups.append(group)
    for group in groups:
        width = max(int(length[group].max()), 1) if len(group) else 1
        block = max(256, min(_BLOCK_TOKENS, _BLOCK_BYTES // width))
        for s in range(0, len(group), block):
            sel = group[s:s + block]
            part = _parse_block(tokens, idx[sel])
            out.value[sel], out.integer[sel], out.is_int[sel] = part.value, part.integer, part.is_int
    return out


def _parse_block(tokens: Tokens, idx: np.ndarray) -> Parsed:
    """The vectorised parse of one block of tokens (all at most _MAX_TOKEN characters)."""
    n = len(idx)
    ch, length, width = _char_matrix(tokens, idx)
    d = ch - np.uint8(48)
    isd = d < 10
    is_dot = ch == 46
    is_sign = (ch == 45) | (ch == 43)
    is_e = (ch | np.uint8(32)) == 101
    n_dig = _count(isd)
    n_dot = _count(is_dot)
    n_sign = _count(is_sign)
    n_e = _count(is_e)
    lead_sign = is_sign[0]
    # every character is a digit, a dot, a sign or an exponent mark
    ok = (n_dig + n_dot + n_sign + n_e) == length
    ok &= (n_dot <= 1) & (n_e <= 1) & (n_dig > 0)
    has_e = n_e > 0
    plain = ~has_e
    ok &= ~plain | (n_sign == lead_sign)          # without exponent: at most one sign, in front
    bad = np.flatnonzero(~ok)
    if len(bad):
        raise_bad_token(tokens, int(idx[bad[0]]))
    m_dig = isd
    exp_rows = np.flatnonzero(has_e)
    if len(exp_rows):
        after_e = _running_or(is_e[:, exp_rows])
        m_dig = isd.copy()
        m_dig[:, exp_rows] &= ~after_e
    # Horner over character positions: exact uint64 mantissa (digits before any 'e'; <= 19 digits)
    digit = np.where(m_dig, d, np.uint8(0))
    times = np.where(m_dig, np.uint8(10), np.uint8(1))
    mant = np.zeros(n, dtype=np.uint64)
    for k in range(width):
        mant *= times[k]
        mant += digit[k]
    # digits after the dot = (end of the mantissa) - (dot position) - 1; one dot at most
    dot_pos = (is_dot.view(np.uint8) * _COLS_U8[:width, None]).sum(0, dtype=np.int64)
    mant_end = length.copy()
    n_mdig = _count(m_dig)
    if len(exp_rows):
        mant_end[exp_rows] = np.argmax(is_e[:, exp_rows], axis=0)
    scale = np.where(n_dot > 0, dot_pos + 1 - mant_end, 0)
    if len(exp_rows):
        scale[exp_rows] += _parse_exponents(tokens, idx, exp_rows, ch, d, isd, is_e, is_dot, is_sign,
                                            n_mdig, after_e)
    neg = ch[0] == 45
    is_int = plain & (n_dot == 0) & (n_mdig <= 19) & (mant <= np.uint64(_INT64_MAX))
    signed = np.where(is_int, mant, np.uint64(0)).astype(np.int64)
    integer = np.where(neg, -signed, signed)
    # exact: an integer mantissa < 2**63 times / divided by an exactly representable 10**k
    power = _POW10[np.minimum(np.abs(scale), 22)]
    value = mant.astype(np.float64)
    value = np.where(scale < 0, value / power, value * power)
    small = (np.abs(scale) <= 22) & (n_mdig <= 15)   # mantissa < 2**53: exactly representable
    if not small.all():  # longer mantissas / huge exponents: numpy's correctly rounded conversion
        rare = np.flatnonzero(~small)
        text = np.ascontiguousarray(ch[:, rare].T).view(f"S{width}").ravel()
        value[rare] = np.abs(text.astype(np.float64))
    value = np.where(neg, -value, value)
    if not np.isfinite(value).all():
        tok = int(idx[np.flatnonzero(~np.isfinite(value))[0]])
        raise SkeletonFormatError(tokens.path, tokens.line_of_token(tok),
                                  f"non-finite value {tokens.text(tok)!r} (overflows float)",
                                  "the file is corrupt; re-extract it or list it as bad")
    return Parsed(value, integer, is_int)


def _count(mask: np.ndarray) -> np.ndarray:
    """Per-token count of True over the character positions (axis 0), as uint8."""
    return mask.view(np.uint8).sum(0, dtype=np.uint8)


def _running_or(mask: np.ndarray) -> np.ndarray:
    """out[k] = mask[0] | ... | mask[k] along the character positions."""
    out = np.empty_like(mask)
    out[0] = mask[0]
    for k in range(1, len(mask)):
        np.logical_or(out[k - 1], mask[k], out=out[k])
    return out


def _parse_exponents(tokens, idx, rows, ch, d, isd, is_e, is_dot, is_sign, n_mdig, after_e):
    """Exponent values of the tokens ``rows`` (which contain one e/E); checks their layout."""
    width = ch.shape[0]
    col = _COLS[:width, None]
    e_pos = np.argmax(is_e[:, rows], axis=0)
    sub_sign = is_sign[:, rows]
    exp_sign = sub_sign & (col == e_pos[None, :] + 1)
    x_dig = isd[:, rows] & after_e
    n_xdig = _count(x_dig)
    ok = (n_mdig[rows] > 0) & (n_xdig > 0)
    ok &= ~(is_dot[:, rows] & after_e).any(0)                          # no dot in the exponent
    ok &= _count(sub_sign) == is_sign[0, rows] + _count(exp_sign)       # signs: in front / after e
    ok &= n_xdig <= 5
    bad = np.flatnonzero(~ok)
    if len(bad):
        if n_xdig[bad[0]] > 5:
            tok = int(idx[rows[bad[0]]])
            raise SkeletonFormatError(tokens.path, tokens.line_of_token(tok),
                                      f"exponent out of range in {tokens.text(tok)!r}")
        raise_bad_token(tokens, int(idx[rows[bad[0]]]))
    expo = np.zeros(len(rows), dtype=np.int64)
    sub_d = d[:, rows]
    for k in range(width):
        np.multiply(expo, 10, out=expo, where=x_dig[k])
        np.add(expo, sub_d[k], out=expo, where=x_dig[k])
    return np.where(exp_sign.any(0) & (ch[np.minimum(e_pos + 1, width - 1), rows] == 45), -expo, expo)


def parse_numbers(tokens: Tokens, idx: np.ndarray, *, integer: bool = False) -> np.ndarray:
    """float64 values of the tokens ``idx`` (``integer=True``: int64, digits only)."""
    parsed = parse_tokens(tokens, idx)
    if not integer:
        return parsed.value
    return checked_integers(tokens, np.asarray(idx), parsed)


def checked_float32(tokens: Tokens, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (parsed from the tokens ``idx``, one each, in order) as the readers' float32,
    raising at the first one beyond float32's range: finite as float64, it would turn into inf."""
    with np.errstate(over="ignore"):
        out = values.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(out.ravel()))
    if len(bad):
        tok = int(np.asarray(idx)[bad[0]])
        raise SkeletonFormatError(tokens.path, tokens.line_of_token(tok),
                                  f"value {tokens.text(tok)!r} overflows float32",
                                  "the file is corrupt; re-extract it or list it as bad")
    return out


def checked_integers(tokens: Tokens, idx: np.ndarray, parsed: Parsed, sel=slice(None)) -> np.ndarray:
    """``parsed.integer[sel]``, raising for any token there that is not a 64-bit integer."""
    bad = np.flatnonzero(~parsed.is_int[sel])
    if len(bad):
        tok = int(idx[sel][bad[0]])
        if "." in tokens.text(tok) or "e" in tokens.text(tok).lower():
            raise_bad_token(tokens, tok, "an integer")
        raise SkeletonFormatError(tokens.path, tokens.line_of_token(tok),
                                  f"integer {tokens.text(tok)!r} does not fit in 64 bits")
    return parsed.integer[sel]
