import json
import os

import pytest

from paraclip.results import EvalResult, load_results, results_frame, save_results


def test_round_trip_and_frame(tmp_path):
    r = EvalResult(model="m", task="STSB", metrics={"spearman": 80.0, "pearson": 81.0}, main_metric="spearman",
                   source="local:x", n=10, seconds=1.5, pretrained="tag", details={"items": {"gold": [1.0]}})
    path = tmp_path / "out" / "r.json"
    save_results([r], path)
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)
    back = load_results(path)[0]
    assert back.metrics == r.metrics and back.details == r.details and back.versions["torch"]
    frame = results_frame([back])
    assert set(frame["metric"]) == {"spearman", "pearson"} and frame.loc[frame["main"], "value"].item() == 80.0
    doc = json.loads(path.read_text())
    doc["results"][0]["schema"] = "other/9"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a paraclip.result/1"):
        load_results(path)
