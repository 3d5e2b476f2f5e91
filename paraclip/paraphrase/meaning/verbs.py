"""Verb groups for the meaning-change check (ours): actions that say the same in an everyday caption.

The action check is closed-vocabulary on purpose: a caption verb is compared only when both
it and the paraphrase's verb are listed here, so an unlisted verb never raises a flag.
"""

from __future__ import annotations

VERB_GROUPS: tuple[tuple[str, ...], ...] = (
    ("sleep", "nap", "doze", "slumber", "snooze", "rest", "asleep", "sleeping", "lie"),
    ("sit", "perch", "rest", "seat", "lounge", "settle", "stay", "position", "place", "lie", "relax", "stand"),
    ("lie", "lay", "rest", "recline", "lounge", "sprawl", "relax", "curl"),
    ("stand", "rest", "wait", "stay", "pose", "position", "remain", "tower", "rise", "sit", "perch"),
    ("eat", "munch", "consume", "devour", "enjoy", "nibble", "chew", "graze", "feed", "dine", "have", "bite",
     "snack", "feast"),
    ("drink", "sip", "lap", "gulp", "slurp", "quench"),
    ("cook", "prepare", "fry", "make", "saute", "scramble", "bake", "grill"),
    ("hold", "carry", "grip", "clutch", "grasp", "have", "bear", "cradle", "keep", "wield"),
    ("carry", "hold", "transport", "haul", "tote", "balance", "bear", "lug"),
    ("wear", "dress", "sport", "don", "clad", "outfit", "attire"),
    ("play", "frolic", "romp", "engage", "compete", "kick", "dribble", "throw", "toss", "catch", "hit", "swing"),
    ("walk", "stroll", "stride", "amble", "wander", "hike", "trek", "go", "move", "head", "march", "lead", "make"),
    ("run", "sprint", "race", "dash", "jog", "rush"),
    ("fly", "soar", "glide", "hover", "float", "flutter", "sail", "launch"),
    ("throw", "toss", "pitch", "hurl", "fling", "lob", "pass"),
    ("catch", "grab", "snag", "seize", "snatch", "leap", "jump"),
    ("park", "stop", "stand", "sit", "wait", "rest", "station", "leave"),
    ("lean", "prop", "rest", "stand", "set"),
    ("talk", "chat", "speak", "converse", "call"),
    ("read", "peruse", "browse", "study"),
    ("cut", "slice", "chop", "carve", "dice", "trim", "serve", "divide"),
    ("swim", "paddle", "float", "glide", "bob", "drift", "wade"),
    ("graze", "eat", "feed", "munch", "browse", "nibble", "forage"),
    ("hang", "dangle", "suspend", "drape"),
    ("drive", "travel", "cruise", "speed", "move", "go", "ride", "roll", "head", "zoom", "motor"),
    ("cross", "traverse", "pass", "span", "go", "travel", "move", "run"),
    ("pull", "draw", "haul", "tow", "drag", "tug"),
    ("build", "construct", "make", "create", "sculpt", "shape", "craft"),
    ("brush", "clean", "scrub", "floss"),
    ("feed", "give", "offer", "throw"),
    ("surf", "ride", "catch"),
    ("ski", "descend", "glide", "slide", "schuss", "carve"),
    ("ride", "cycle", "pedal", "bike", "travel", "go", "mount", "sit", "drive", "cruise", "move", "head"),
    ("repair", "fix", "mend", "service"),
    ("take", "depart", "launch", "ascend", "lift", "rise", "leave", "climb"),
    ("tie", "moor", "dock", "secure", "fasten", "anchor", "attach", "rest", "sit", "float"),
    ("fill", "contain", "hold", "pack", "stuff", "house", "have", "feature", "include", "display", "show", "boast",
     "offer", "equip", "furnish", "come", "top", "sit", "place", "set", "serve", "arrange", "rest", "lie"),
    ("look", "gaze", "stare", "watch", "view", "observe", "peer"),
    ("smile", "grin", "beam", "laugh"),
    ("chase", "pursue", "follow", "hunt"),
    ("hug", "embrace", "cuddle", "hold", "squeeze"),
    ("kick", "boot", "strike"),
    ("wash", "rinse", "clean", "bathe"),
    ("climb", "scale", "ascend", "clamber"),
    ("jump", "leap", "hop", "bound", "spring"),
    ("skate", "skateboard", "ride", "perform", "do", "execute", "pull", "trick"),
)

#: verbs that only link a subject to where it is or what it has: never an action of their own
LIGHT_VERBS = frozenset(
    "be get seem appear look become remain keep stay let show see use try feature include contain "
    "locate situate find see".split()
)
