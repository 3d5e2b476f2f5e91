import json
import os
from pathlib import Path

import pytest

from paraclip.errors import DataError
from paraclip.paraphrase.io import (RunLock, load_records, read_captions, recover_output, update_review,
                                    update_reviews, write_records)

REPO = Path(__file__).resolve().parents[2]


def test_text_with_parallel_image_ids_as_in_the_paper(tmp_path):
    (tmp_path / "captions.txt").write_text("a dog runs\r\ntwo cats sleep\n\na bird\n")
    (tmp_path / "img_ids.txt").write_text("1\n2\n3\n4\n")
    caps = read_captions(tmp_path / "captions.txt", image_ids_path=tmp_path / "img_ids.txt")
    assert [(c.caption, c.image_id, c.line) for c in caps] == [
        ("a dog runs", "1", 1), ("two cats sleep", "2", 2), ("", "3", 3), ("a bird", "4", 4)]


def test_image_id_file_of_other_length_is_an_error(tmp_path):
    (tmp_path / "c.txt").write_text("a dog runs\ntwo cats\n")
    (tmp_path / "ids.txt").write_text("1\n")
    with pytest.raises(DataError, match=r"ids.txt has 1 lines but .*c.txt has 2"):
        read_captions(tmp_path / "c.txt", image_ids_path=tmp_path / "ids.txt")


def test_non_utf8_line_is_named_and_can_be_skipped(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"a dog runs\ncaf\xe9 on a street\na bird sings\n")
    with pytest.raises(DataError, match=r"c.txt:2: not valid UTF-8.*--skip-bad-lines"):
        read_captions(path)
    caps = read_captions(path, skip_bad_lines=True)
    assert [c.caption for c in caps] == ["a dog runs", "a bird sings"]
    assert len(caps.skipped) == 1 and "c.txt:2:" in caps.skipped[0]


def test_csv_and_tsv_with_columns(tmp_path):
    (tmp_path / "d.csv").write_text('id,text\n7,"a dog, running"\n8,two cats\n')
    caps = read_captions(tmp_path / "d.csv", caption_column="text", image_id_column="id")
    assert [(c.caption, c.image_id) for c in caps] == [("a dog, running", "7"), ("two cats", "8")]
    (tmp_path / "d.tsv").write_text("caption\timage_id\na dog\tx1\n")
    assert read_captions(tmp_path / "d.tsv")[0].image_id == "x1"


def test_missing_column_names_file_and_available_columns(tmp_path):
    (tmp_path / "d.csv").write_text("id,text\n1,a dog\n")
    with pytest.raises(DataError, match=r"d.csv: no column 'caption'.*id, text.*--caption-column"):
        read_captions(tmp_path / "d.csv")


def test_csv_short_row_is_a_bad_line(tmp_path):
    (tmp_path / "d.csv").write_text("image_id,caption\n1,a dog runs\n2\n3,a cat sits\n")
    with pytest.raises(DataError, match=r"d.csv:3: expected 2 fields \(image_id, caption\), found 1"):
        read_captions(tmp_path / "d.csv")
    assert len(read_captions(tmp_path / "d.csv", skip_bad_lines=True)) == 2


def test_jsonl_malformed_line_and_missing_field(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"caption": "a dog runs", "image_id": 5}\n{"caption": "two cats\n{"text": "x"}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: malformed JSON"):
        read_captions(path)
    caps = read_captions(path, skip_bad_lines=True)
    assert [(c.caption, c.image_id) for c in caps] == [("a dog runs", "5")]
    assert "d.jsonl:3: no field 'caption'" in caps.skipped[1]


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"caption": ["a dog runs", None], "image_id": [1, 2]}), tmp_path / "d.parquet")
    with pytest.raises(DataError, match="row 2.*null"):
        read_captions(tmp_path / "d.parquet")
    caps = read_captions(tmp_path / "d.parquet", skip_bad_lines=True)
    assert [(c.caption, c.image_id) for c in caps] == [("a dog runs", "1")]
    with pytest.raises(DataError, match="no column 'text'"):
        read_captions(tmp_path / "d.parquet", caption_column="text")


def test_missing_file():
    with pytest.raises(DataError, match="no such input file"):
        read_captions("/nonexistent/captions.txt")


def _rec(i, **kw):
    return {"index": i, "image_id": str(i), "caption": f"caption {i}", "paraphrase_1": f"p1 {i}",
            "paraphrase_2": f"p2 {i}", "status": "ok", "error": None, "review": "unreviewed", **kw}


def test_recover_cuts_a_torn_last_line(tmp_path):
    path = tmp_path / "out.jsonl"
    write_records(path, [_rec(0), _rec(1)])
    with open(path, "ab") as f:
        f.write(b'{"index": 2, "caption": "capt')  # a kill -9 mid-write
    assert sorted(recover_output(path)) == [0, 1]
    assert path.read_bytes().endswith(b"}\n")
    assert len(path.read_text().splitlines()) == 2


def test_damaged_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(_rec(0)) + "\nGARBAGE\n" + json.dumps(_rec(2)) + "\n")
    with pytest.raises(DataError, match="out.jsonl:2:"):
        recover_output(path)


def test_reviews_accept_reject_edit(tmp_path):
    path = tmp_path / "out.jsonl"
    write_records(path, [_rec(0), _rec(1), _rec(2, status="failed", paraphrase_2=None, error="step 2: refusal")])
    update_review(path, 0, "accepted")
    update_reviews(path, {1: {"review": "rejected"}, 2: {"paraphrase_2": "  a fixed   paraphrase "}})
    recs = load_records(path)
    assert [r["review"] for r in recs] == ["accepted", "rejected", "edited"]
    assert recs[2]["paraphrase_2"] == "a fixed paraphrase" and recs[2]["original"] == {"paraphrase_2": None}
    assert recs[2]["status"] == "ok" and recs[2]["error"] is None
    with pytest.raises(DataError, match="review must be one of"):
        update_review(path, 0, "maybe")
    with pytest.raises(DataError, match="no record with index 9"):
        update_review(path, 9, "accepted")


def test_review_refuses_while_a_run_holds_the_lock(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "out.jsonl"
    write_records(path, [_rec(0)])
    holder = ("import sys, time; from paraclip.paraphrase.io import RunLock; RunLock(sys.argv[1]).acquire(); "
              "print('locked', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(path)], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == b"locked"  # a live writer
        assert RunLock(path).holder() == proc.pid
        with pytest.raises(DataError, match=f"pid {proc.pid}"):
            update_review(path, 0, "accepted")
    finally:
        proc.kill()  # kill -9: the kernel drops the lock, the file stays behind
        proc.wait()
        proc.stdout.close()
    assert RunLock(path).path.exists() and RunLock(path).holder() is None
    update_review(path, 0, "accepted")  # a stale lock file does not block
    assert load_records(path)[0]["review"] == "accepted"


def test_a_second_lock_in_the_same_process_is_refused(tmp_path):
    first, second = RunLock(tmp_path / "o.jsonl"), RunLock(tmp_path / "o.jsonl")
    first.acquire()
    with pytest.raises(DataError, match="a run in this process is writing"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
    assert not first.path.exists()


_RACER = """
import os, sys, time
from paraclip.errors import DataError
from paraclip.paraphrase.io import RunLock
out, go_at, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
held = refused = overlaps = 0
for r in range(rounds):
    while time.time() < go_at + r * 0.1:  # every racer tries at the same instant
        pass
    lock = RunLock(f"{out}.{r}")
    try:
        lock.acquire()
    except DataError:
        refused += 1
        continue
    held += 1
    try:  # only one holder may be inside at a time
        os.close(os.open(f"{out}.{r}.inside", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        overlaps += 1
    else:
        time.sleep(0.03)
        os.unlink(f"{out}.{r}.inside")
    lock.release()
print(held, refused, overlaps)
"""


def test_lock_race_between_processes_never_has_two_holders(tmp_path):
    """Four processes try to take the same lock at the same instant, 40 rounds: never two holders at once."""
    import subprocess
    import sys
    import time

    rounds, racers = 40, 4
    go_at = time.time() + 2.0  # after every racer has started
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path / "out"), str(go_at), str(rounds)],
                              stdout=subprocess.PIPE, env=env) for _ in range(racers)]
    results = [tuple(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    held, refused, overlaps = (sum(r[i] for r in results) for i in range(3))
    assert overlaps == 0
    assert held >= rounds and refused > 0  # every round had a holder, and the racers really contended


def test_unusable_output_paths_are_found_before_any_work(tmp_path):
    from paraclip.paraphrase.io import check_output_path

    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match=r"--out .*/d is a folder; give a file name in it"):
        check_output_path(tmp_path / "d")
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match=r"f is a file, not a folder"):
        check_output_path(tmp_path / "f" / "sub" / "o.jsonl")
    check_output_path(tmp_path / "new" / "o.jsonl")  # a missing folder is created
    assert (tmp_path / "new").is_dir() and not list((tmp_path / "new").iterdir())  # the probe is gone
    if Path("/sys").is_mount():
        with pytest.raises(DataError, match="cannot write there"):
            check_output_path("/sys/paraclip-probe.jsonl")


def test_damaged_caption_files_are_data_errors_naming_the_file(tmp_path):
    import gzip

    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "c.json").write_text(deep)
    with pytest.raises(DataError, match=r"c\.json: JSON nested too deeply"):
        read_captions(tmp_path / "c.json")
    (tmp_path / "c.jsonl").write_text('{"caption": "a dog"}\n{"caption": ' + deep + "}\n")
    with pytest.raises(DataError, match=r"c\.jsonl:2: JSON nested too deeply"):
        read_captions(tmp_path / "c.jsonl")
    assert [c.caption for c in read_captions(tmp_path / "c.jsonl", skip_bad_lines=True)] == ["a dog"]
    with gzip.open(tmp_path / "z.jsonl.gz", "wt") as f:  # read as JSONL, not as lines of text
        f.write('{"caption": "a cat", "image_id": 3}\n')
    assert [(c.caption, c.image_id) for c in read_captions(tmp_path / "z.jsonl.gz")] == [("a cat", "3")]
    (tmp_path / "t.txt.gz").write_text("not gzip\n")
    with pytest.raises(DataError, match=r"t\.txt\.gz:1: not a gzip file"):
        read_captions(tmp_path / "t.txt.gz")


def test_a_deeply_nested_output_line_is_a_damaged_line_not_a_crash(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"index": 0}\n' + "[" * 100_000 + "]" * 100_000 + '\n{"index": 1e400}\n{"index": 2}\n')
    with pytest.raises(DataError, match=r"out\.jsonl:2: not a paraphrase record"):
        recover_output(path)
    assert [r["index"] for r in load_records(path)] == [0, 2]
