"""Meaning-change flags: does a paraphrase still describe the caption's picture?

:mod:`.rules` compares two parsed texts (:mod:`.parse`, word knowledge in :mod:`.lexicon`, :mod:`.wordnet` and
:mod:`.verbs`); :mod:`.judge` asks an LLM whether a pair keeps the meaning (``--meaning-judge``: the run's own model,
for capable API models); :mod:`.second_opinion` asks it about each word swap the rules flag (measured, not used);
:mod:`.evaluation` scores a flagger against a labelled set, with intervals.
"""

from paraclip.paraphrase.meaning.rules import MeaningCheck, check_meaning, drop_if_changed, meaning_signals

__all__ = ["MeaningCheck", "check_meaning", "drop_if_changed", "meaning_signals"]
