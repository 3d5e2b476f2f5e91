"""Build a compact WordNet 3.0 extract (nouns, verbs): lemma -> synsets (first senses), synset -> lexfile, hypernyms."""
import gzip, json, sys
from pathlib import Path
src = Path(sys.argv[1]); out = Path(sys.argv[2])
lexnames = [l.split()[1] for l in (src/"lexnames").read_text().splitlines()]
res = {"lexnames": lexnames}
for pos in ("noun", "verb"):
    ids = {}
    syn = []
    def sid(off):
        if off not in ids:
            ids[off] = len(ids); syn.append(None)
        return ids[off]
    for line in (src/f"data.{pos}").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "): continue
        f = line.split(" | ")[0].split()
        off, lex = f[0], int(f[1]); w = int(f[3], 16)
        p = 4 + 2*w; n = int(f[p]); p += 1
        hyp = []
        for k in range(n):
            sym, o, ps = f[p], f[p+1], f[p+2]; p += 4
            if sym in ("@", "@i") and ps == pos[0]:
                hyp.append(sid(o))
        syn[sid(off)] = [lex, hyp]
    lemmas = {}
    for line in (src/f"index.{pos}").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "): continue
        f = line.split()
        lemma = f[0]; sc = int(f[2]); pc = int(f[3]); offs = f[4+pc+2:]
        assert len(offs) == sc, line
        lemmas[lemma.replace("_", " ")] = [ids[o] for o in offs]
    res[pos] = {"lemmas": lemmas, "synsets": syn}
out.write_bytes(gzip.compress(json.dumps(res, separators=(",", ":")).encode(), 9, mtime=0))
print(out, out.stat().st_size, {p: (len(res[p]["lemmas"]), len(res[p]["synsets"])) for p in ("noun","verb")})
