"""TIMIT phone inventory, the standard 61 -> 39 folding and the standard speaker lists (data).

Folding (Lee & Hon 1989, as every TIMIT recipe scores): 'q' is dropped; closures, pauses,
epenthetic silence and h# become 'sil'; ao->aa, ax/ax-h->ah, axr->er, hv->hh, ix->ih, el->l,
em->m, en/nx->n, eng->ng, zh->sh, ux->uw.
"""
from __future__ import annotations

from collections.abc import Iterable

PHONES_61: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ax", "ax-h", "axr", "ay", "b", "bcl", "ch", "d", "dcl", "dh",
    "dx", "eh", "el", "em", "en", "eng", "epi", "er", "ey", "f", "g", "gcl", "h#", "hh", "hv", "ih",
    "ix", "iy", "jh", "k", "kcl", "l", "m", "n", "ng", "nx", "ow", "oy", "p", "pau", "pcl", "q", "r",
    "s", "sh", "t", "tcl", "th", "uh", "uw", "ux", "v", "w", "y", "z", "zh",
)  # fmt: skip

_FOLD = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m",
    "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil", "dcl": "sil", "gcl": "sil",
    "h#": "sil", "pau": "sil", "epi": "sil",
}  # fmt: skip

FOLD_61_TO_39: dict[str, str | None] = {p: (None if p == "q" else _FOLD.get(p, p)) for p in PHONES_61}
PHONES_39: tuple[str, ...] = tuple(sorted({v for v in FOLD_61_TO_39.values() if v is not None}))

# Training targets may use all 61 phones (standard) or the 39 folded ones.
PHONE_SETS = {"61": PHONES_61, "39": PHONES_39}

CHARACTERS: tuple[str, ...] = tuple(" 'abcdefghijklmnopqrstuvwxyz")

# The 24-speaker core test set (192 utterances), 3 per dialect region DR1..DR8.
CORE_TEST_SPEAKERS: frozenset[str] = frozenset("""
mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0
mbpm0 mklt0 fnlp0 mcmj0 mjdh0 fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0
""".split())

# The 50-speaker development set (400 utterances) drawn from TIMIT's TEST part.
DEV_SPEAKERS: frozenset[str] = frozenset("""
faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0 fdms0 fedw0
mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0 mdls0 mdlf0 mdvc0 mers0
fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0 fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0
fmml0 mrws1
""".split())

assert len(PHONES_61) == 61 and len(PHONES_39) == 39
assert len(CORE_TEST_SPEAKERS) == 24 and len(DEV_SPEAKERS) == 50 and not CORE_TEST_SPEAKERS & DEV_SPEAKERS


def fold_phones(phones: Iterable[str]) -> list[str]:
    """Map a 61-phone (or already folded) sequence to the 39 scoring phones, dropping 'q' and
    merging the runs of 'sil' that folding creates (e.g. 'pau h#' -> one 'sil')."""
    out: list[str] = []
    for p in phones:
        folded = FOLD_61_TO_39.get(p, p if p in PHONES_39 else None)
        if folded is None:
            continue
        if out and out[-1] == folded == "sil":
            continue
        out.append(folded)
    return out
