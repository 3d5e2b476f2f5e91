"""The Paraphrase tab's table and row review: quality marks, meaning-change flags, a filter, and
review actions that store exactly what the user chose.

A review applies to the current run's file only: the row picked by a click remembers which file
it came from, and a new run clears the picked row and the edit boxes. Corrected paraphrases are
stored (and the row marked "edited") only when the text really differs from the record.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

TABLE_COLUMNS = ["index", "image_id", "caption", "paraphrase_1", "paraphrase_2", "status", "meaning", "flags",
                 "review"]
# readable at 1400 px: the three texts share most of the width, the short columns stay narrow
COLUMN_WIDTHS = ["64px", "96px", "17%", "17%", "17%", "72px", "13%", "8%", "104px"]
# the phone's table: the texts and one verdict, so three columns of text share 400 px
NARROW_COLUMNS = ["caption", "paraphrases", "check"]
NARROW_WIDTHS = ["36%", "44%", "20%"]
FILTERS = ["all", "meaning changed", "meaning kept"]
REVIEW_CHOICES = ["accepted", "rejected", "edited", "unreviewed"]


def flags_of(record: dict[str, Any]) -> str:
    """Short quality marks for the table: failures, copies, low novelty."""
    q = record.get("quality") or {}
    marks = []
    if record.get("status") != "ok":
        marks.append(f"⚠ {record.get('error') or record.get('status')}")
    if q.get("copy_1") or q.get("copy_2"):
        marks.append("copy")
    for key in ("novelty_1", "novelty_2"):
        if q.get(key) is not None and q[key] < 0.2:
            marks.append(f"low {key.replace('_', ' ')} {q[key]:.2f}")
    return "; ".join(marks)


def meaning_flag(record: dict[str, Any]) -> bool | None:
    """True/False from ``quality.meaning_changed``; None when the record predates the check or failed
    (a failed row has no paraphrase whose meaning could be judged)."""
    if failed(record):
        return None
    value = (record.get("quality") or {}).get("meaning_changed")
    return None if value is None else bool(value)


def failed(record: dict[str, Any]) -> bool:
    return record.get("status") not in (None, "ok")


def meaning_of(record: dict[str, Any]) -> str:
    """The meaning-change column: which step changed what, "kept", "unknown" (no check recorded), or
    blank for a failed row."""
    if failed(record):
        return ""
    q = record.get("quality") or {}
    flag = meaning_flag(record)
    if flag is None:
        return "unknown"
    if not flag:
        return "kept"
    parts = []
    for step in (1, 2):
        if q.get(f"meaning_changed_{step}"):
            reason = q.get(f"meaning_reason_{step}")
            parts.append(f"step {step}: {reason}" if reason else f"step {step}")
    return "⚠ changed" + (f" ({'; '.join(parts)})" if parts else "")


def keep_row(record: dict[str, Any], view: str) -> bool:
    flag = meaning_flag(record)
    if view == "meaning changed":
        return flag is True
    if view == "meaning kept":
        return flag is False
    return True


def records_table(records: list[dict[str, Any]], view: str = "all") -> pd.DataFrame:
    rows = [{"index": r.get("index"), "image_id": r.get("image_id") or "", "caption": r.get("caption"),
             "paraphrase_1": r.get("paraphrase_1") or "", "paraphrase_2": r.get("paraphrase_2") or "",
             "status": r.get("status"), "meaning": meaning_of(r), "flags": flags_of(r),
             "review": r.get("review", "unreviewed")}
            for r in sorted(records, key=lambda r: r.get("index", 0)) if keep_row(r, view)]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def narrow_table(table: pd.DataFrame | None) -> pd.DataFrame:
    """The table for a narrow screen, row for row: caption, both paraphrases in one cell (① step 1, ② step 2),
    and the verdict
    (the failure for a failed row, else the meaning check)."""
    if table is None or len(table) == 0 or "caption" not in table.columns:
        return pd.DataFrame(columns=NARROW_COLUMNS)

    def check(row) -> str:
        if row["status"] not in (None, "ok"):
            flags = str(row.get("flags") or "").split(";")[0].replace("⚠ ", "")
            return f"✗ failed{': ' + flags if flags else ''}"
        return str(row["meaning"]).split(" (")[0]

    return pd.DataFrame({
        "caption": table["caption"],
        "paraphrases": [f"① {a} ② {b}" if a or b else ""
                        for a, b in zip(table["paraphrase_1"], table["paraphrase_2"])],
        "check": [check(row) for _, row in table.iterrows()],
    }, columns=NARROW_COLUMNS)


def filter_choices(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The filter's options with their row counts, e.g. ("meaning changed (3)", "meaning changed")."""
    counts = {view: sum(keep_row(r, view) for r in records) for view in FILTERS}
    unknown = sum(meaning_flag(r) is None and not failed(r) for r in records)
    n_failed = sum(failed(r) for r in records)
    labels = {"all": f"all ({counts['all']})", "meaning changed": f"meaning changed ({counts['meaning changed']})",
              "meaning kept": f"meaning kept ({counts['meaning kept']})"}
    if unknown:
        labels["all"] += f", {unknown} unchecked"
    if n_failed:
        labels["all"] += f", {n_failed} failed"
    return [(labels[v], v) for v in FILTERS]


def export_csv(records: list[dict[str, Any]], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "image_id", "caption", "paraphrase_1", "paraphrase_2", "status", "meaning_changed",
                         "review"])
        for r in records:
            flag = meaning_flag(r)
            writer.writerow([r.get("index"), r.get("image_id") or "", r.get("caption"), r.get("paraphrase_1") or "",
                             r.get("paraphrase_2") or "", r.get("status"), "" if flag is None else str(flag).lower(),
                             r.get("review", "unreviewed")])
    return path


def downloads(path: str | Path, records: list[dict[str, Any]]) -> list[str] | None:
    return [str(path), str(export_csv(records, Path(path).with_suffix(".csv")))] if records else None


def _current(session: dict | None) -> tuple[str | None, list[dict[str, Any]]]:
    from paraclip.paraphrase import load_records

    path = (session or {}).get("paraphrases")
    if not path or not Path(path).is_file():
        return None, []
    return path, load_records(path)


def review_update(record: dict[str, Any], review: str, p1: str | None, p2: str | None) -> dict[str, Any]:
    """The update that stores what the user chose for ``record`` (raises ValueError when it makes no sense).

    Edits count only where the text differs from the record (the boxes are pre-filled with it);
    "rejected" and "unreviewed" keep the record's text as it is.
    """
    if review not in REVIEW_CHOICES:
        raise ValueError(f"review must be one of {', '.join(REVIEW_CHOICES)}")
    if review in ("rejected", "unreviewed"):
        return {"review": review}
    edits = {}
    for name, text in (("paraphrase_1", p1), ("paraphrase_2", p2)):
        new = " ".join((text or "").split())
        if new and new != " ".join((record.get(name) or "").split()):
            edits[name] = new
    if edits:
        return {"review": "edited", **edits}
    if review == "edited":
        raise ValueError("the paraphrases are unchanged: edit them in the boxes, or choose “accepted”")
    return {"review": "accepted"}


def apply_review(session, picked, index, review, p1, p2, view):
    """Store one row's review; returns (status, table, files, filter choices)."""
    from paraclip.errors import ParaclipError
    from paraclip.paraphrase import update_reviews

    skip = (gr.skip(), gr.skip(), gr.skip())
    path, records = _current(session)
    if not path:
        return ("❌ Nothing to review yet: run paraphrasing first.", *skip)
    if index is None or index == "":
        return ("❌ Pick a row: click it in the table or type its index.", *skip)
    index = int(index)
    if picked and picked.get("file") not in (None, path):
        return ("❌ The review boxes hold a row of an earlier run: click a row of the current table.", *skip)
    record = next((r for r in records if r.get("index") == index), None)
    if record is None:
        return (f"❌ There is no row {index} in the current run (indices {records[0]['index'] if records else 0}–"
                f"{records[-1]['index'] if records else 0}).", *skip)
    try:
        update = review_update(record, review, p1, p2)
        update_reviews(path, {index: update})
    except (ValueError, ParaclipError) as exc:
        return (f"❌ row {index}: {exc}", *skip)
    _, records = _current(session)
    changed = [k for k in ("paraphrase_1", "paraphrase_2") if k in update]
    detail = f" (corrected {' and '.join(changed)})" if changed else ""
    return (f"✅ row {index} → {update['review']}{detail}", records_table(records, view), downloads(path, records),
            gr.update(choices=filter_choices(records)))


def accept_all_ok(session, view):
    from paraclip.errors import ParaclipError
    from paraclip.paraphrase import update_reviews

    path, records = _current(session)
    if not path:
        return "❌ Nothing to review yet.", gr.skip(), gr.skip()
    updates = {r["index"]: {"review": "accepted"} for r in records
               if r.get("status") == "ok" and r.get("review", "unreviewed") == "unreviewed"}
    try:
        if updates:
            update_reviews(path, updates)
    except ParaclipError as exc:
        return f"❌ {exc}", gr.skip(), gr.skip()
    _, records = _current(session)
    return f"✅ accepted {len(updates)} unreviewed ok rows", records_table(records, view), downloads(path, records)


def select_row(session, table: pd.DataFrame, evt: gr.SelectData):
    """A clicked row -> (index, paraphrase 1, paraphrase 2, picked) with ``picked`` naming the file."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        rec = table.iloc[int(row)]
        index = int(rec["index"])
    except (IndexError, ValueError, TypeError, KeyError):
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return index, rec["paraphrase_1"], rec["paraphrase_2"], {"file": (session or {}).get("paraphrases"),
                                                              "index": index}


def typed_row(session, index):
    """A typed row index -> its paraphrases in the edit boxes (so edits always belong to that row)."""
    path, records = _current(session)
    record = next((r for r in records if index is not None and r.get("index") == int(index)), None)
    if record is None:
        return "", "", None
    return record.get("paraphrase_1") or "", record.get("paraphrase_2") or "", {"file": path, "index": int(index)}


def change_view(session, view):
    _, records = _current(session)
    return records_table(records, view)


def cleared_review() -> tuple:
    """Values that empty the review boxes (a new run starts)."""
    return None, "", "", None
