"""Word lists for the meaning-change check (ours): colours, numbers, spatial relations, synonyms.

Everyday-caption vocabulary (COCO-like scenes) only. Entries are data: each synonym group
lists words that describe the same thing in a caption; ``GENERALISATIONS`` lists the broader
words a paraphrase may use instead (``man`` -> ``person``) without changing what is shown.
Multi-word entries ("fire hydrant", "in front of") are matched as one unit.
"""

from __future__ import annotations

#: colour word -> its base colour (shades a paraphrase may use for the same colour)
COLOURS: dict[str, str] = {
    **{c: c for c in ("red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white",
                      "gray", "silver", "gold", "beige", "tan", "teal", "turquoise")},
    "grey": "gray", "crimson": "red", "scarlet": "red", "maroon": "red", "burgundy": "red", "ruby": "red",
    "navy": "blue", "azure": "blue", "cobalt": "blue", "emerald": "green", "olive": "green", "lime": "green",
    "golden": "gold", "violet": "purple", "lavender": "purple", "magenta": "pink", "ivory": "white",
    "snowy white": "white", "verdant": "green", "jet black": "black", "ebony": "black", "chocolate brown": "brown",
}

#: number words -> count ("a"/"an" are singular but not counted: every caption has them)
NUMBERS: dict[str, int] = {
    "one": 1, "single": 1, "lone": 1, "solitary": 1, "lonely": 1,
    "two": 2, "pair of": 2, "a pair of": 2, "couple of": 2, "a couple of": 2, "both": 2, "twin": 2, "twins": 2,
    "duo of": 2, "a duo of": 2, "three": 3, "trio of": 3, "a trio of": 3, "four": 4, "quartet of": 4,
    "a quartet of": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12, "a dozen": 12,
}

#: spatial relation phrase -> relation class
RELATIONS: dict[str, str] = {
    "on": "on", "onto": "on", "upon": "on", "atop": "on", "on top of": "on", "sitting on": "on",
    "resting on": "on", "perched on": "on", "perched atop": "on",
    "above": "above", "over": "above", "overhead": "above", "high above": "above",
    "under": "under", "underneath": "under", "beneath": "under", "below": "under",
    "left of": "left", "to the left of": "left", "on the left of": "left",
    "right of": "right", "to the right of": "right", "on the right of": "right",
    "in front of": "front", "before": "front", "ahead of": "front",
    "behind": "behind", "in back of": "behind", "at the back of": "behind",
    "next to": "near", "by": "near", "near": "near", "past": "near",
    "beside": "side", "besides": "side", "alongside": "side", "by the side of": "side",
    "close to": "near", "adjacent to": "near", "nearby": "near", "against": "near",
    "inside": "in", "in": "in", "within": "in", "into": "in", "inside of": "in",
    "outside": "out", "outside of": "out", "out of": "out",
    "in the shade of": "under", "in the shadow of": "under", "shaded by": "under",
}
#: relation -> the relations that may replace it between the same two objects ("next to" -> "left of" is
#: more precise, "on" -> "under" contradicts it); "in" is too loose ("in the grass") to contradict anything
_ALL = ("on", "above", "under", "left", "right", "front", "behind", "near", "side", "in", "out")
COMPATIBLE_RELATIONS: dict[str, frozenset[str]] = {
    "on": frozenset({"on", "above", "in"}), "above": frozenset({"above", "on", "in"}),
    "under": frozenset({"under", "in"}), "left": frozenset({"left", "near", "side", "in"}),
    "right": frozenset({"right", "near", "side", "in"}), "front": frozenset({"front", "near", "in"}),
    "behind": frozenset({"behind", "near", "in"}),
    "near": frozenset({"near", "side", "left", "right", "front", "behind", "in"}),
    # "beside" / "alongside" say at the side: more precise than "near", contradicting "behind" / "in front of"
    "side": frozenset({"side", "near", "left", "right", "in"}),
    "in": frozenset(_ALL) - {"out"}, "out": frozenset({"out", "near", "side", "front", "behind", "left", "right"}),
}
#: relation -> the relation that says the same with the objects swapped ("A left of B" == "B right of A")
CONVERSE_RELATIONS = {"on": "under", "above": "under", "under": "above", "left": "right", "right": "left",
                      "front": "behind", "behind": "front", "near": "near", "side": "side"}

#: groups of interchangeable words in everyday captions (each group is one meaning)
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    # people
    ("man", "guy", "gentleman", "male", "fellow", "dude", "gent"),
    ("woman", "lady", "female", "gal"),
    ("person", "individual", "someone", "somebody", "human", "figure"),
    ("people", "persons", "individuals", "folks", "crowd", "group of people", "pedestrians"),
    ("child", "kid", "youngster", "little one", "tot", "toddler"),
    ("boy", "lad", "young boy", "little boy", "male child"),
    ("girl", "young girl", "little girl", "lass", "female child"),
    ("baby", "infant", "newborn"),
    ("father", "dad", "daddy"), ("mother", "mom", "mum", "mommy"),
    ("chef", "cook"), ("police officer", "policeman", "cop", "officer", "police"),
    ("couple", "pair"),
    # animals
    ("dog", "canine", "hound", "pooch", "doggy"), ("puppy", "pup", "young dog"),
    ("cat", "feline", "kitty"), ("kitten", "young cat", "kitty cat"),
    ("horse", "steed", "equine", "mare", "stallion", "pony"),
    ("bird", "avian", "fowl"), ("pigeon", "dove"), ("cow", "cattle", "bovine", "ox"),
    ("sheep", "ewe"), ("lamb", "young sheep"), ("duck", "duckling", "mallard"),
    ("bear",), ("teddy bear", "stuffed bear", "toy bear", "teddy", "plush bear"),
    ("stuffed animal", "plush toy", "soft toy", "plushie", "stuffed toy"),
    # vehicles
    ("car", "automobile", "auto", "sedan"), ("bicycle", "bike", "cycle", "two wheeler"),
    ("motorcycle", "motorbike", "motor bike", "scooter"), ("truck", "lorry", "pickup"),
    ("bus", "coach"), ("school bus",), ("airplane", "plane", "aeroplane", "aircraft", "jet", "airliner"),
    ("boat", "vessel", "craft", "ship"), ("sailboat", "sailing boat", "sailing ship"), ("train", "locomotive"),
    ("fire truck", "fire engine"),
    # things
    ("couch", "sofa", "settee", "loveseat"), ("refrigerator", "fridge"), ("television", "tv", "tv set", "telly"),
    ("cell phone", "cellphone", "mobile phone", "phone", "smartphone", "mobile", "telephone"),
    ("laptop", "notebook computer", "computer"), ("mug", "cup", "coffee mug", "coffee cup"),
    ("glasses", "spectacles", "eyeglasses"), ("sofa cushion", "cushion", "pillow"),
    ("frisbee", "flying disc", "disc", "disk"), ("umbrella", "brolly"), ("kite",),
    ("plate", "dish", "platter"), ("bowl", "basin"), ("table", "tabletop"), ("desk", "workstation"),
    ("counter", "countertop", "worktop"), ("bench", "seat"), ("chair", "seat"), ("bed", "mattress"),
    ("crib", "cot", "baby bed"), ("sink", "basin", "washbasin"), ("toilet", "loo", "lavatory", "commode"),
    ("bathtub", "tub", "bath"), ("mirror", "looking glass"), ("cabinet", "cupboard", "cabinetry"),
    ("stove", "oven", "range", "cooker"), ("vase", "flower vase"), ("clock", "timepiece"),
    ("scissors", "shears", "pair of scissors"), ("notebook", "notepad", "journal"), ("book", "novel"),
    ("suit", "business suit"), ("sweater", "jumper", "pullover"), ("hat", "cap"),
    ("surfboard", "surf board", "board"), ("skateboard", "skate board", "board"), ("ski",),
    ("racket", "racquet", "tennis racket", "tennis racquet"), ("balloon",), ("ball",), ("yarn", "wool", "thread"),
    ("candle",), ("box", "carton", "container", "case", "package"), ("frying pan", "pan", "skillet"),
    ("windowsill", "window sill", "window ledge", "sill", "ledge"), ("photo", "picture", "image", "photograph"),
    ("stand", "tv stand"), ("fence post", "post"), ("hook", "peg"), ("wire", "cable", "line"),
    # food
    ("pasta", "noodles", "spaghetti"), ("sandwich", "sub"), ("hot dog", "hotdog", "frankfurter", "sausage"),
    ("donut", "doughnut"), ("cake", "birthday cake"), ("pizza", "pie"), ("vegetables", "veggies", "produce"),
    ("food", "meal", "dish", "cuisine"), ("dinner", "meal", "supper"), ("soda", "pop", "soft drink"),
    ("orange", "citrus"), ("broccoli",), ("carrot",), ("banana",),
    # places
    ("street", "road", "roadway", "avenue", "lane", "way", "thoroughfare"),
    ("road", "trail", "path", "track", "lane", "route"), ("sidewalk", "pavement", "footpath", "walkway"), ("highway", "freeway", "motorway", "road", "expressway"),
    ("city", "town", "urban area", "downtown"), ("beach", "shore", "seashore", "shoreline", "coast", "sand",
                                                   "seaside"),
    ("ocean", "sea", "waves"), ("river", "stream", "creek"),
    ("field", "meadow", "pasture", "grassland", "grass", "lawn", "paddock", "turf", "pitch"), ("park", "garden", "green"),
    ("hill", "slope", "hillside", "mountain", "mountainside"), ("room", "space", "area", "interior"),
    ("kitchen", "cookhouse"), ("bathroom", "restroom", "washroom", "lavatory"), ("living room", "lounge",
                                                                                  "sitting room", "family room"),
    ("building", "structure", "edifice"), ("station", "firehouse", "fire station"), ("barn", "shed", "stable"),
    ("dock", "pier", "jetty", "wharf"), ("runway", "airstrip", "tarmac"), ("court", "tennis court"),
    ("curb", "kerb"), ("corner", "intersection", "junction"), ("fair", "carnival", "festival", "fairground"),
    ("crowd", "throng", "mass of people"), ("tree",), ("leaf", "foliage"), ("sky", "air"),
    ("snow",), ("wave", "breaker", "swell"),
    # collective / quantity nouns that say "several" in a different way
    ("group", "bunch", "cluster", "herd", "flock", "pack", "team", "collection", "set", "bundle"),
    # sizes and ages
    ("small", "little", "tiny", "compact", "petite", "mini", "miniature"), ("large", "big", "huge", "giant",
                                                                            "enormous", "massive"),
    ("old", "elderly", "aged", "senior"), ("young", "youthful", "little"), ("tall", "towering", "high"),
    ("stormy", "rough", "choppy", "turbulent", "wild"), ("calm", "still", "tranquil", "peaceful", "placid", "serene"),
    ("empty", "deserted", "vacant", "quiet"), ("busy", "crowded", "bustling", "packed"),
    ("wooden", "wood", "timber"), ("metal", "metallic", "steel", "iron"),
)

#: specific word -> broader words a faithful paraphrase may use instead
GENERALISATIONS: dict[str, tuple[str, ...]] = {
    **{w: ("person", "people", "individual", "someone", "figure", "human", "adult") for w in (
        "man", "woman", "boy", "girl", "child", "kid", "baby", "guy", "lady", "chef", "player", "skier", "surfer",
        "skateboarder", "rider", "officer", "police officer", "father", "mother", "couple", "cyclist", "teenager")},
    **{w: ("child", "kid", "youngster", "young person") for w in ("boy", "girl", "baby", "toddler")},
    **{w: ("animal", "creature", "pet", "beast", "mammal") for w in (
        "dog", "cat", "horse", "cow", "sheep", "elephant", "giraffe", "zebra", "bear", "bird", "puppy", "kitten",
        "duck", "lamb", "goat", "frog", "pigeon")},
    **{w: ("bird", "waterfowl", "fowl") for w in ("duck", "pigeon", "goose", "seagull", "gull", "parrot")},
    **{w: ("vehicle", "motor vehicle") for w in ("car", "truck", "bus", "van", "motorcycle", "taxi", "school bus",
                                              "fire truck")},
    **{w: ("food", "meal", "dish", "snack", "treat") for w in (
        "pasta", "pizza", "sandwich", "hot dog", "donut", "cake", "broccoli", "carrot", "banana", "orange",
        "apple", "eggs", "egg", "vegetables", "fruit", "salad")},
    **{w: ("vegetables", "veggies", "greens", "produce") for w in ("broccoli", "carrot", "carrots", "peppers")},
    **{w: ("fruit", "produce") for w in ("orange", "banana", "apple")},
    **{w: ("furniture", "seat", "seating") for w in ("couch", "sofa", "chair", "bench", "table", "desk", "bed")},
    **{w: ("device", "gadget", "electronics") for w in ("laptop", "cell phone", "phone", "television")},
    **{w: ("vessel", "watercraft", "craft") for w in ("boat", "sailboat")},
    **{w: ("toy",) for w in ("teddy bear", "stuffed animal", "kite", "balloon", "ball")},
    **{w: ("flowers", "blooms", "blossoms", "bouquet") for w in ("roses", "tulips", "daisies", "sunflowers")},
    **{w: ("water", "body of water") for w in ("lake", "pond", "river", "ocean", "sea", "stream")},
    **{w: ("area", "place", "spot", "setting", "location", "outdoors", "scene") for w in (
        "field", "park", "beach", "street", "road", "pasture", "yard", "lawn")},
    **{w: ("road", "street", "path", "route") for w in ("highway", "dirt road", "country road", "lane")},
    **{w: ("building", "structure", "edifice") for w in ("station", "barn", "house", "school", "church", "tower",
                                                        "clock tower", "shop", "store", "restaurant")},
    **{w: ("surface", "top") for w in ("desk", "table", "counter", "shelf")},
    **{w: ("device", "machine", "computer", "gadget") for w in ("laptop", "computer", "phone", "cell phone")},
    **{w: ("landscape", "scenery", "surroundings", "setting", "area") for w in (
        "street", "city", "road", "field", "park", "beach", "hill", "mountain")},
    **{w: ("backdrop", "background", "surface") for w in ("wall", "fence")},
    "runway": ("airport", "airfield", "tarmac"),
    "hydrant": ("fire hydrant",), "fire hydrant": ("hydrant",),
}

#: colour -> words whose colour it is anyway: "a green grassy field" adds nothing to "a grassy field"
IMPLIED_COLOURS: dict[str, frozenset[str]] = {
    "green": frozenset("grass grassy field meadow lawn turf foliage leaf leaves tree trees park pasture forest".split()),
    "blue": frozenset("sky ocean sea water lake".split()),
    "white": frozenset("snow snowy cloud clouds".split()),
}

#: nouns for someone doing something -> the objects and actions that the role implies
ROLE_NOUNS: dict[str, tuple[str, ...]] = {
    "cyclist": ("bicycle", "bike", "ride", "cycle"), "biker": ("bicycle", "bike", "motorcycle", "ride"),
    "rider": ("ride", "horse", "bike", "bicycle", "motorcycle", "skateboard"),
    "surfer": ("surfboard", "surf", "wave"), "skier": ("ski",), "snowboarder": ("snowboard",),
    "skateboarder": ("skateboard", "skate"), "skater": ("skateboard", "skate"), "pedestrian": ("walk", "people"),
    "player": ("play", "ball", "racket", "bat"), "diner": ("eat", "dinner", "meal"), "reader": ("read", "book"),
    "driver": ("drive", "car", "truck", "bus"), "pilot": ("airplane", "plane", "fly"), "swimmer": ("swim",),
    "runner": ("run",), "jockey": ("horse", "ride"), "equestrian": ("horse", "ride"), "chef": ("cook",),
    "passenger": ("ride", "train", "bus"), "shepherd": ("sheep", "flock"), "batter": ("bat", "baseball"),
    "pitcher": ("throw", "baseball"), "kite flyer": ("kite", "fly"),
    # actions that name their object: "a man riding a bike" -> "a person pedals"
    "pedal": ("bicycle", "bike"), "cycle": ("bicycle", "bike"), "surf": ("surfboard", "wave"),
    "ski": ("ski",), "skate": ("skateboard",), "skateboard": ("skateboard",), "graze": ("grass",),
}

#: nouns that only frame the picture or quantify: never objects of their own
FRAMING_NOUNS = frozenset(
    "photo picture image photograph view shot scene close-up closeup close up snapshot depiction".split()
    + "lot lots number bunch group couple pair side top front back middle edge part piece kind sort".split()
    + "way day time front background foreground distance herd flock cluster bundle stack pile row".split()
    + "crowd team collection set slice assortment variety selection array drizzle splash dollop".split()
    + "line heap mound batch handful series".split()
)
#: words for a number of people said as one ("a couple" = two people); followed by "of" they only count
COLLECTIVE_PEOPLE = {"couple": 2, "pair": 2, "duo": 2, "twosome": 2, "trio": 3, "threesome": 3, "quartet": 4,
                     "foursome": 4, "quintet": 5}

#: words never treated as content (articles, auxiliaries, pronouns, light verbs, conjunctions)
STOPWORDS = frozenset(
    "a an the and or but of at to for with from by as is are was were be been being am it its it's this that "
    "these those there here some any each his her hers their theirs our your my mine him them they he she we "
    "you i who whom which what where when while than then so very just also not no too up down out off away "
    "has have had having do does did doing appears appear seems seem looks look can could will would may might "
    "another other one's itself himself herself themselves while during through across along around toward "
    "towards into onto upon about plus".split()
)
