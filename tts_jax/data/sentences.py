"""A deterministic English sentence generator for the embedded espeak corpus.

Sentences are built from a small phrase grammar over a few hundred content words. They carry
what the cleaners must handle (cardinals, ordinals, years, dates, times, money, percentages,
titles such as "Dr." and "St.") and the punctuation that shapes prosody (commas, questions,
exclamations, colons, semicolons, quotes). The same seed always gives the same list; no two
sentences in a list are equal; each has 3 to 25 words.

A model that has only heard the grammar's words mumbles on new ones. ``extra_words`` widens
the text: each noun, adjective and adverb slot then draws from that list half of the time
(:func:`english_words` gives English's most frequent words, from the wordfreq package).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tts_jax.errors import UserError

NOUNS = """
apple river garden window teacher doctor engine village letter mountain island bottle candle
forest market kitchen picture bridge engineer farmer painter sailor pilot student library
museum theatre station harbour castle valley desert meadow orchard lantern compass hammer
ladder basket blanket pencil notebook violin trumpet piano guitar drum camera computer
telephone radio newspaper magazine journal diary calendar clock mirror carpet curtain pillow
chair table cupboard drawer shelf staircase chimney balcony cottage palace cathedral chapel
school college hospital factory office warehouse bakery butcher grocer merchant sheriff
captain soldier general senator mayor judge lawyer banker clerk writer poet singer dancer
actor scientist chemist astronomer gardener fisherman shepherd hunter traveller stranger
neighbour cousin uncle aunt grandmother child puppy kitten horse donkey rabbit squirrel
sparrow eagle salmon dolphin whale turtle spider butterfly beetle mosquito elephant tiger
wolf bear fox owl raven pigeon parrot onion carrot potato tomato cabbage lemon orange cherry
peach melon biscuit sandwich pudding cheese butter honey coffee tea lemonade soup kettle
teapot saucer spoon fork knife plate bucket shovel wheel wagon carriage bicycle motorcar
train tram steamer canoe rocket balloon umbrella overcoat jacket sweater scarf glove boot
hat ribbon necklace bracelet diamond emerald feather pebble shell crystal storm thunder
lightning rainbow blizzard breeze fog frost glacier volcano canyon prairie swamp lagoon
waterfall fountain statue monument parliament council committee festival parade concert
lecture experiment theory invention discovery puzzle riddle secret promise rumour argument
""".split()

ADJECTIVES = """
quiet enormous tiny ancient modern bright gloomy cheerful careful clever curious eager gentle
honest humble jolly lazy lively lonely lucky nervous noble polite proud restless serious
silly sleepy stubborn sudden swift timid tired wealthy wicked wise young elderly narrow broad
shallow deep heavy light smooth rough soft hard warm chilly frozen damp dusty muddy sandy
rusty shiny golden silver wooden woollen velvet crimson scarlet purple yellow green blue
brown grey pale dark hollow crowded empty famous forgotten hidden mysterious peculiar strange
ordinary splendid terrible wonderful delicate fragile sturdy clumsy graceful patient
generous jealous anxious brave fierce calm noisy fragrant bitter sweet sour salty spicy
crisp tender ripe rotten fresh stale distant nearby northern southern eastern western
""".split()

# (present, past) forms, transitive.
VERBS = [
    tuple(v.split("/"))
    for v in """
carry/carried borrow/borrowed build/built paint/painted repair/repaired discover/discovered
examine/examined follow/followed deliver/delivered describe/described polish/polished
measure/measured collect/collected gather/gathered hide/hid find/found lose/lost sell/sold
buy/bought bring/brought take/took open/opened close/closed wash/washed cook/cooked
bake/baked plant/planted feed/fed chase/chased catch/caught throw/threw push/pushed
pull/pulled lift/lifted drop/dropped steal/stole return/returned visit/visited admire/admired
ignore/ignored forget/forgot remember/remembered praise/praised scold/scolded answer/answered
study/studied sketch/sketched photograph/photographed weigh/weighed count/counted
wrap/wrapped fold/folded sew/sewed mend/mended guard/guarded watch/watched inspect/inspected
defend/defended explain/explained announce/announced invent/invented design/designed
decorate/decorated deliver/delivered rescue/rescued abandon/abandoned offer/offered
""".split()
]

ADVERBS = """
quickly slowly quietly loudly carefully eagerly gladly rarely often suddenly gently boldly
calmly patiently nervously proudly secretly honestly happily sadly warmly politely
cheerfully silently wearily briskly clumsily gracefully finally recently yesterday
""".split()

NAMES = """
Smith Jones Brown Taylor Wilson Evans Thomas Johnson Roberts Walker Wright Robinson Thompson
White Hughes Edwards Green Hall Wood Harris Lewis Martin Jackson Clarke Clark Turner Hill
Scott Cooper Morris Ward Moore King Watson Baker Harrison Morgan Patel Young Allen Mitchell
James Anderson Phillips Lee Bell Parker Davis Bennett Carter Fisher Ellis Hunter Palmer
""".split()

FIRST_NAMES = """
Alice Arthur Beatrice Charles Clara Daniel Edith Edward Eleanor Frank Grace Henry Irene Jack
Julia Lucy Margaret Martha Oliver Peter Rose Samuel Sophie Thomas Victor Walter William
""".split()

PLACES = """
London Boston Dublin Chicago Denver Paris Vienna Lisbon Oslo Cairo Sydney Toronto Glasgow
Bristol Oxford Cambridge Memphis Austin Seattle Portland Madrid Geneva Prague Berlin Rome
Naples Athens Kyoto Lima Quebec Halifax Dover Bath York Chester
""".split()

SAINT_PLACES = ["Louis", "Petersburg", "Albans", "Ives", "Helens", "Andrews", "Austell"]
TITLES = ["Mr.", "Mrs.", "Dr.", "Prof.", "Capt.", "Sgt.", "Rev.", "Gen.", "Col.", "Ms."]
MONTHS = """January February March April May June July August September October November
December""".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
PREPOSITIONS = [
    "near",
    "behind",
    "beside",
    "under",
    "above",
    "inside",
    "outside",
    "across",
    "beyond",
    "towards",
    "around",
    "along",
]
CONJUNCTIONS = ["and", "but", "so", "while", "because", "although", "until", "before", "after"]
EXCLAIMS = ["Goodness", "Oh dear", "Well", "Indeed", "Look", "Hurry", "Listen", "Alas"]


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _capitalize(s: str) -> str:
    return s[0].upper() + s[1:]


def _plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun in ("knife",):
        return "knives"
    if noun == "child":
        return "children"
    return noun + "s"


# The word-class slots that extra words may fill (no part-of-speech tags come with them, so a
# frequent word may stand where a noun should: the acoustics, not the syntax, are the point).
_OPEN_CLASSES = (NOUNS, ADJECTIVES, ADVERBS)
EXTRA_WORD_SHARE = 0.5


def english_words(n: int) -> list[str]:
    """English's ``n`` most frequent words (wordfreq), alphabetic ones of 3+ letters only."""
    try:
        import wordfreq  # optional (the [corpus] extra): only --words needs it
    except ImportError:
        raise UserError(
            "widening the corpus text needs the wordfreq package: pip install 'tts-jax[corpus]'"
        ) from None
    return [w for w in wordfreq.top_n_list("en", n) if re.fullmatch(r"[a-z]{3,}", w)]


class _Builder:
    def __init__(self, rng: np.random.Generator, extra_words=()):
        self.rng = rng
        self.extra = list(extra_words)

    def pick(self, words):
        if self.extra and any(words is c for c in _OPEN_CLASSES):
            if self.chance(EXTRA_WORD_SHARE):
                words = self.extra
        return words[self.rng.integers(len(words))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # ---- phrases ----
    def person(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            return f"{self.pick(TITLES)} {self.pick(NAMES)}"
        if r < 0.6:
            return self.pick(FIRST_NAMES)
        return f"the {self.adjective_maybe()}{self.pick(NOUNS)}"

    def adjective_maybe(self) -> str:
        return f"{self.pick(ADJECTIVES)} " if self.chance(0.55) else ""

    def thing(self) -> str:
        r = self.rng.random()
        if r < 0.25:
            n = int(self.rng.choice([2, 3, 4, 5, 7, 9, 12, 15, 20, 24, 36, 48, 100, 250, 1200]))
            return f"{n} {self.adjective_maybe()}{_plural(self.pick(NOUNS))}"
        det = self.pick(["the", "a", "his", "her", "their", "that", "every", "our"])
        words = f"{self.adjective_maybe()}{self.pick(NOUNS)}"
        if det == "a":
            det = _article(words)
        return f"{det} {words}"

    def place(self) -> str:
        r = self.rng.random()
        if r < 0.2:
            return f"St. {self.pick(SAINT_PLACES)}"
        if r < 0.55:
            return self.pick(PLACES)
        return f"the {self.adjective_maybe()}{self.pick(NOUNS)}"

    def date(self) -> str:
        month = self.pick(MONTHS)
        day = int(self.rng.integers(1, 29))
        year = int(self.rng.integers(1850, 2030))
        r = self.rng.random()
        if r < 0.4:
            return f"on {month} {day}, {year}"
        if r < 0.7:
            return f"on the {day}{_ordinal_suffix(day)} of {month}"
        if r < 0.85:
            return f"in {year}"
        return f"on {self.pick(DAYS)}"

    def time(self) -> str:
        h = int(self.rng.integers(1, 13))
        m = int(self.rng.choice([0, 5, 10, 15, 20, 30, 45, 50]))
        return f"at {h}:{m:02d} {self.pick(['a.m.', 'p.m.'])}"

    def money(self) -> str:
        r = self.rng.random()
        if r < 0.5:
            return f"${int(self.rng.integers(1, 100))}.{int(self.rng.integers(1, 100)):02d}"
        if r < 0.75:
            return f"${int(self.rng.integers(2, 5000)):,}"
        if r < 0.9:
            return f"£{int(self.rng.integers(2, 900))}"
        return f"${int(self.rng.integers(2, 40))} million"

    def adverbial(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.date()
        if r < 0.45:
            return self.time()
        if r < 0.75:
            return f"{self.pick(PREPOSITIONS)} {self.place()}"
        return self.pick(ADVERBS)

    def clause(self) -> str:
        verb = self.pick(VERBS)[1]
        parts = [self.person(), verb, self.thing()]
        if self.chance(0.6):
            parts.append(self.adverbial())
        return " ".join(parts)

    # ---- sentences ----
    def sentence(self) -> str:
        kind = self.rng.random()
        if kind < 0.30:
            s = self.clause()
            if self.chance(0.4):
                s = f"{s}, {self.pick(CONJUNCTIONS)} {self.clause()}"
            return _capitalize(s) + "."
        if kind < 0.42:
            verb = self.pick(VERBS)[0]
            return f"Did {self.person()} {verb} {self.thing()} {self.adverbial()}?"
        if kind < 0.50:
            words = f"{self.pick(ADJECTIVES)} {self.pick(NOUNS)}"
            return f"{self.pick(EXCLAIMS)}, what {_article(words)} {words}!"
        if kind < 0.60:
            return f"{_capitalize(self.date())}, {self.clause()}."
        if kind < 0.70:
            return f"{_capitalize(self.person())} paid {self.money()} for {self.thing()}."
        if kind < 0.77:
            pct = int(self.rng.integers(2, 99))
            return f"About {pct}% of the {_plural(self.pick(NOUNS))} were {self.pick(ADJECTIVES)}."
        if kind < 0.84:
            p = self.person()
            said = self.pick(["said", "asked", "whispered", "shouted", "replied"])
            q = self.clause()
            end = "?" if said == "asked" else "."
            return f'"{_capitalize(q)}{end}" {said} {p}.'
        if kind < 0.91:
            a, b = self.clause(), self.clause()
            sep = self.pick(["; ", ": ", " - "])
            return f"{_capitalize(a)}{sep}{b}."
        n = int(self.rng.integers(2, 31))
        return (
            f"The {self.pick(NOUNS)} number {n} left {self.place()} {self.time()} "
            f"and reached {self.place()} by the {n}{_ordinal_suffix(n)} of {self.pick(MONTHS)}."
        )


def generate_sentences(
    n: int,
    seed: int = 0,
    min_words: int = 3,
    max_words: int = 25,
    extra_words=(),
    exclude=frozenset(),
):
    """``n`` distinct sentences, deterministic for ``seed``, each ``min_words..max_words`` words.

    ``extra_words`` widen the vocabulary (see the module docstring); sentences in ``exclude``
    (e.g. another corpus's held-out ones) are never returned."""
    rng = np.random.default_rng(seed)
    builder = _Builder(rng, extra_words)
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could not generate {n} distinct sentences")
        s = " ".join(builder.sentence().split()).replace("..", ".").replace(".?", "?")
        if not min_words <= len(s.split()) <= max_words or s in seen or s in exclude:
            continue
        seen.add(s)
        out.append(s)
    return out


def read_sentences(path) -> list[str]:
    """A text file of sentences, one a line; blank lines and lines starting with '#' skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"sentences file {path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"sentences file {path} is not UTF-8 text ({e.reason})") from None
    sentences = [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]
    if not sentences:
        raise UserError(f"sentences file {path} holds no sentence")
    return sentences
