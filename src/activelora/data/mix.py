"""The embedded ``mix`` dataset: a skewed pool of short tasks, as a realistic instruction pool is.

``arith`` is one skill spread evenly; real pools mix many tasks at uneven frequencies, some of
which the model already solves, some it can learn from a few labels and some beyond it, and they
hold near-duplicates. ``mix`` builds that on purpose, so that which examples a learner labels
can matter (issue 16). Every answer is one short line (:class:`~activelora.data.tasks.MixTask`
reads it back).

Skills (:data:`SKILLS`), each with a designed ``level`` for SmolLM2-135M-Instruct (1: solved
zero-shot, 2: meant to be learnable within about 200 labels, 3: meant to stay out of reach) and
its share of the pool; the commonest skill (copy) holds 42.5% of the pool and the rarest (sort)
2.5%. The zero-shot accuracies per skill, in the model's chat template as
``benchmarks/configs/mix.yaml`` runs it, are in ``benchmarks/results/mix_zero_shot.md``.

Splits (``generate_mix(split, n, seed)``):

* ``train``: the pool, skills at their pool shares, and :data:`DUPLICATE_SHARE` of its rows
  near-duplicates of an earlier pool row of the same skill: the same item in another wording
  (``meta["duplicate"] == "reworded"``) or with one number moved by 1 to 3 (``"renumbered"``);
  ``meta["duplicate_of"]`` names the source row's id;
* ``test``: every skill equally often (the skill-balanced test set: a user who wants every skill);
* ``test_pool_like``: skills at their pool shares, no near-duplicates (the pool's own mix);
* ``dev`` and ``dev_pool_like``: the same two kinds of set drawn from the *train* side, for
  tuning a setting without looking at a test set (``data.test_split: dev``; the run then
  reports ``dev_pool_like`` as ``accuracy_pool_like``). Their items are train-side items that
  none of the first :data:`DEV_CLEAR_OF_TRAIN_ROWS` train rows holds, so a pool (and probe) of
  at most that many rows never meets them; the loader refuses a longer one. ``dev`` and
  ``dev_pool_like`` each own a fixed half of those items (:func:`dev_half`), so they are
  disjoint whatever their lengths, and both are disjoint from the test sets by construction.

What "disjoint" means: an *item* is a skill with its content (the words, letters or numbers),
whatever the wording. Each item belongs to exactly one split, fixed by the SHA-1 of the item
(:func:`split_of`), so no test item appears in the pool in any wording, and the two test sets
share no item either. A renumbered near-duplicate is a new item (of the pool's side); two
additions that differ in one number are different problems, in the pool as between splits, and
so are two skills asked of one noun (a plural test item's noun may be asked for its first letter
in the pool).

Guarantees: deterministic (``random.Random(f"mix-{seed}-{split}")``, string seeds hashed with
SHA-512); ``generate_mix(split, n, seed)`` is the first ``n`` rows of ``generate_mix(split, m,
seed)`` for ``m >= n``; the skill of row ``i`` follows a fixed schedule (the skill furthest
below its share so far), so every prefix of a split holds each skill within one row of its
share; the near-duplicate rows follow a schedule of the same kind (a scheduled row whose skill
has no earlier fresh row yet is drawn fresh instead).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable

from ..errors import DataError
from .example import Example

# test and dev: 40 per skill
DEFAULT_SIZES = {"train": 2000, "test": 360, "test_pool_like": 400, "dev": 360, "dev_pool_like": 400}
SPLITS = tuple(DEFAULT_SIZES)
DUPLICATE_SHARE = 0.15  # of the pool's rows, near-duplicates of an earlier pool row
DEV_SPLITS = ("dev", "dev_pool_like")
BALANCED_SPLITS = ("test", "dev")  # every skill equally often; the others at the pool's shares
# The dev splits avoid the items of this many leading train rows: mix.yaml's pool is 1000 rows,
# and a longer prefix would leave plural and first_letter (one item per noun) too few items.
DEV_CLEAR_OF_TRAIN_ROWS = 1000
MAX_REDRAWS = 20_000  # consecutive rejected draws before giving up (n too large)

# Countable nouns, lower case, no repeats: plural and first_letter draw one; copy and uppercase
# draw pairs of WORDS.
NOUNS = (
    "apple", "river", "stone", "cloud", "table", "horse", "light", "paper", "chair", "plant",
    "smile", "train", "house", "dream", "glass", "field", "ocean", "tiger", "lemon", "candle", "forest",
    "garden", "window", "pencil", "rocket", "bottle", "button", "castle", "dragon", "flower", "guitar",
    "island", "jacket", "kitten", "ladder", "mirror", "orange", "pepper", "rabbit", "saddle", "ticket",
    "wallet", "basket", "carpet", "doctor", "engine", "finger", "hammer", "magnet", "needle", "planet",
    "shadow", "tunnel", "wizard", "anchor", "bridge", "desert", "feather", "harbor", "jungle", "kettle",
    "meadow", "puzzle", "spider", "valley", "cherry", "brush", "crown", "dance", "flame", "grape",
    "heart", "lunch", "night", "olive", "pearl", "queen", "robot", "voice", "wheel", "beach", "dress",
    "ghost", "jewel", "maple", "bench", "box", "church", "fox", "bus", "watch", "peach", "class",
    "sandwich", "city", "story", "puppy", "baby", "lady", "party", "berry", "pony", "bunny", "daisy",
    "diary", "army", "ferry", "lily", "hobby", "candy", "boat", "cup", "pen", "car", "book", "tree",
    "bird", "door", "lamp", "shoe", "sock", "hat", "coat", "shirt", "ring", "bell", "drum", "flag",
    "nest", "egg", "frog", "duck", "goat", "cow", "pig", "lion", "bear", "wolf", "snake", "whale",
    "shark", "crab", "bag", "bed", "bowl", "spoon", "fork", "plate", "pot", "pan", "oven", "sink",
    "bath", "towel", "soap", "comb", "key", "lock", "clock", "phone", "radio", "camera", "piano",
    "violin", "trumpet", "flute", "kite", "ball", "doll", "toy", "game", "card", "map", "letter",
    "stamp", "coin", "note", "song", "poem", "word", "line", "page", "chapter", "street", "road",
    "path", "hill", "mountain", "lake", "pond", "stream", "cave", "rock", "wave", "storm",
    "star", "moon", "sky", "farm", "barn", "fence", "gate", "wall", "roof", "floor",
    "room", "hall", "stair", "tower", "palace", "cabin", "tent", "school", "office", "shop", "market",
    "bank", "library", "museum", "hotel", "airport", "station", "garage", "kitchen", "jar", "bucket",
    "barrel", "truck", "bike", "plane", "ship", "wagon", "sled", "helmet", "glove", "scarf", "boot",
    "belt", "zipper", "pocket", "sleeve", "collar", "thread", "ribbon", "rope", "chain", "wire", "nail",
    "screw", "bolt", "tool", "saw", "drill", "shovel", "rake", "hose", "seed", "root", "branch",
    "trunk", "bush", "vine", "weed", "grass", "petal", "bean", "carrot", "onion", "melon", "banana",
    "mango", "cookie", "cake", "pie", "muffin", "biscuit",
)
WORDS = NOUNS[:120]  # copy and uppercase: pairs of the first 120 (14,280 ordered pairs)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Skill:
    """One kind of item. ``draw`` makes an item's content, ``answer`` its gold answer,
    ``wordings`` the questions that ask it (a reworded near-duplicate uses another one), and
    ``renumber`` a neighbouring item (None: the skill has no numbers to move)."""

    name: str
    level: int  # 1: solved zero-shot, 2: learnable within ~200 labels, 3: out of reach
    weight: float  # share of the pool (and of the pool-like test set)
    description: str
    draw: Callable[[random.Random], tuple]
    answer: Callable[[tuple], str]
    wordings: Callable[[tuple], tuple[str, ...]]
    renumber: Callable[[random.Random, tuple], tuple] | None = None


def _nudge(rng: random.Random, value: int, low: int, high: int) -> int:
    """``value`` moved by 1 to 3 either way, kept within [low, high]."""
    moved = value + rng.choice((-3, -2, -1, 1, 2, 3))
    return moved if low <= moved <= high else value - (moved - value)


def _two_words(rng: random.Random) -> tuple:
    return tuple(rng.sample(WORDS, 2))


def _noun(rng: random.Random) -> tuple:
    return (rng.choice(NOUNS),)


def plural(noun: str) -> str:
    """The regular English plural: -es after s, x, z, ch, sh; -ies after a consonant + y; else -s."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _letters(rng: random.Random) -> tuple:
    return tuple(rng.sample(LETTERS, 3))


def _pair(rng: random.Random) -> tuple:
    return rng.randint(10, 99), rng.randint(10, 99)


def _distinct_pair(rng: random.Random) -> tuple:
    a, b = rng.sample(range(10, 1000), 2)
    return a, b


def _chain(rng: random.Random) -> tuple:
    """a + b - c + d with every partial result >= 0."""
    a, b, d = rng.randint(10, 99), rng.randint(10, 99), rng.randint(10, 99)
    c = rng.randint(10, min(99, a + b))
    return a, b, c, d


def _five(rng: random.Random) -> tuple:
    return tuple(rng.sample(range(1, 100), 5))


def _renumber_one(low: int, high: int, *, distinct: bool = False, chain: bool = False):
    """A renumbering: one of the item's numbers moved by 1 to 3 (redrawn by the caller when
    the result breaks the skill's rules: repeated numbers, a negative partial result)."""

    def renumber(rng: random.Random, item: tuple) -> tuple:
        values = list(item)
        i = rng.randrange(len(values))
        values[i] = _nudge(rng, values[i], low, high)
        out = tuple(values)
        if distinct and len(set(out)) < len(out):
            return item
        if chain and out[0] + out[1] - out[2] < 0:
            return item
        return out

    return renumber


def _numbers(values) -> str:
    return ", ".join(str(v) for v in values)


SKILLS: tuple[Skill, ...] = (
    Skill("copy", 2, 0.425, "repeat two words exactly", _two_words,
          lambda it: f"{it[0]} {it[1]}",
          lambda it: (f"Repeat these words exactly: {it[0]} {it[1]}",
                      f"Copy the following words: {it[0]} {it[1]}",
                      f"Write back exactly what follows: {it[0]} {it[1]}")),
    Skill("successor", 2, 0.13, "the whole number after n (10 <= n < 1000)",
          lambda rng: (rng.randint(10, 998),), lambda it: str(it[0] + 1),
          lambda it: (f"What number comes right after {it[0]}?",
                      f"What is the next whole number after {it[0]}?",
                      f"Count up by one from {it[0]}. Which number comes next?"),
          _renumber_one(10, 998)),
    Skill("add", 2, 0.10, "the sum of two two-digit numbers", _pair,
          lambda it: str(it[0] + it[1]),
          lambda it: (f"What is {it[0]} + {it[1]}?",
                      f"Add {it[0]} and {it[1]}.",
                      f"Compute the sum of {it[0]} and {it[1]}."),
          _renumber_one(10, 99)),
    Skill("compare", 2, 0.08, "the larger of two numbers below 1000", _distinct_pair,
          lambda it: str(max(it)),
          lambda it: (f"Which number is larger, {it[0]} or {it[1]}?",
                      f"Name the bigger number: {it[0]} or {it[1]}.",
                      f"Of {it[0]} and {it[1]}, which is greater?"),
          _renumber_one(10, 999, distinct=True)),
    Skill("plural", 1, 0.07, "the plural of a countable noun", _noun,
          lambda it: plural(it[0]),
          lambda it: (f"What is the plural of the word {it[0]}?",
                      f"What is the plural of {it[0]}?",
                      f"Give the plural form of {it[0]}.")),
    Skill("first_letter", 1, 0.07, "the first letter of a noun", _noun,
          lambda it: it[0][0],
          lambda it: (f"What is the first letter of the word {it[0]}?",
                      f"Which letter does the word {it[0]} start with?",
                      f"Name the first letter of {it[0]}.")),
    Skill("reverse", 2, 0.06, "three spaced letters in reverse order", _letters,
          lambda it: f"{it[2]} {it[1]} {it[0]}",
          lambda it: (f"Write the letters {it[0]} {it[1]} {it[2]} in reverse order.",
                      f"Reverse the order of these letters: {it[0]} {it[1]} {it[2]}",
                      f"List {it[0]} {it[1]} {it[2]} backwards.")),
    Skill("chain", 3, 0.04, "a + b - c + d with two-digit numbers", _chain,
          lambda it: str(it[0] + it[1] - it[2] + it[3]),
          lambda it: (f"What is {it[0]} + {it[1]} - {it[2]} + {it[3]}?",
                      f"Compute {it[0]} + {it[1]} - {it[2]} + {it[3]}.",
                      f"Work out {it[0]} plus {it[1]} minus {it[2]} plus {it[3]}."),
          _renumber_one(10, 99, chain=True)),
    Skill("sort", 3, 0.025, "five numbers below 100 in increasing order", _five,
          lambda it: _numbers(sorted(it)),
          lambda it: (f"Sort these numbers from smallest to largest: {_numbers(it)}",
                      f"Put in increasing order: {_numbers(it)}",
                      f"Arrange from lowest to highest: {_numbers(it)}"),
          _renumber_one(1, 99, distinct=True)),
)
SKILL_NAMES = tuple(s.name for s in SKILLS)
_BY_NAME = {s.name: s for s in SKILLS}


def item_key(skill: str, item: tuple) -> str:
    """The identity of an item, whatever its wording: ``"add:(23, 45)"``."""
    return f"{skill}:{item!r}"


def split_of(skill: str, item: tuple) -> str:
    """The split an item belongs to (fixed by its SHA-1, whatever the seed): a quarter of the
    items to ``test``, 15% to ``test_pool_like``, the rest to ``train``. Shares this large leave
    the skills with few items (plural, first_letter: one per noun) enough for every split."""
    digest = int(hashlib.sha1(item_key(skill, item).encode("utf-8")).hexdigest()[:12], 16) % 20
    return "test" if digest < 5 else "test_pool_like" if digest < 8 else "train"


def dev_half(skill: str, item: tuple) -> str:
    """Which dev split a train-side item may serve: ``dev`` or ``dev_pool_like``, by a second
    SHA-1 of the item (salted, so it is independent of :func:`split_of`'s)."""
    digest = int(hashlib.sha1(("dev|" + item_key(skill, item)).encode("utf-8")).hexdigest()[:12], 16)
    return DEV_SPLITS[digest % 2]


def belongs_to(split: str, skill: str, item: tuple) -> bool:
    """Whether a fresh draw of ``split`` may use ``item``: its :func:`split_of` side, and for a
    dev split the train side and its :func:`dev_half`."""
    if split in DEV_SPLITS:
        return split_of(skill, item) == "train" and dev_half(skill, item) == split
    return split_of(skill, item) == split


def skill_schedule(weights: dict[str, float], n: int) -> list[str]:
    """The skill of each of ``n`` rows: row i takes the skill furthest below its share so far
    (largest ``w·(i+1) - count``, ties to the first declared). Every prefix then holds each
    skill within one row of ``w·len(prefix)``, whatever ``n``."""
    total = sum(weights.values())
    shares = {name: w / total for name, w in weights.items()}
    counts = dict.fromkeys(shares, 0)
    out = []
    for i in range(n):
        name = max(shares, key=lambda s: shares[s] * (i + 1) - counts[s])
        counts[name] += 1
        out.append(name)
    return out


def is_duplicate_row(i: int) -> bool:
    """Whether pool row ``i`` is scheduled as a near-duplicate: the rows where
    ``floor(DUPLICATE_SHARE·(i+1))`` steps up, so every prefix holds its share within one row."""
    return int(DUPLICATE_SHARE * (i + 1)) > int(DUPLICATE_SHARE * i)


def _fresh(skill: Skill, rng: random.Random, split: str, seen: set[str]) -> tuple:
    for _ in range(MAX_REDRAWS):
        item = skill.draw(rng)
        if item_key(skill.name, item) not in seen and belongs_to(split, skill.name, item):
            return item
    raise DataError(f"mix: cannot draw another distinct {skill.name} item for split {split!r}; ask for fewer rows")


def generate_mix(split: str, n: int | None = None, seed: int = 0) -> list[Example]:
    """``n`` rows of ``split`` (see the module docstring; defaults :data:`DEFAULT_SIZES`).

    Ids are ``mix-{seed}-{split}-{index:05d}``; ``meta`` holds ``skill``, ``level``,
    ``duplicate`` (``"no"``, ``"reworded"`` or ``"renumbered"``) and ``duplicate_of`` (the
    source row's id, or None).
    """
    if split not in DEFAULT_SIZES:
        raise DataError(f"mix: unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if n is None:
        n = DEFAULT_SIZES[split]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"mix: the number of rows must be a non-negative integer, got {n!r}")
    # A dev split must not meet the pool: it starts with the leading train rows' items as seen.
    avoided = train_item_keys(DEV_CLEAR_OF_TRAIN_ROWS, seed) if split in DEV_SPLITS else set()
    return _generate(split, n, seed, avoided)[0]


def train_item_keys(n: int, seed: int = 0) -> set[str]:
    """The items (:func:`item_key`) of the first ``n`` train rows, near-duplicates included."""
    return set(_generate("train", n, seed, set())[1])


def _generate(split: str, n: int, seed: int, avoided: set[str]) -> tuple[list[Example], list[str]]:
    """The rows of :func:`generate_mix` and each row's item key; no fresh item is in ``avoided``."""
    weights = {s.name: (1.0 if split in BALANCED_SPLITS else s.weight) for s in SKILLS}
    rng = random.Random(f"mix-{seed}-{split}")
    seen: set[str] = set(avoided)
    keys: list[str] = []
    fresh_rows: dict[str, list[tuple[str, tuple, int]]] = {name: [] for name in SKILL_NAMES}
    examples: list[Example] = []
    for i, name in enumerate(skill_schedule(weights, n)):
        skill = _BY_NAME[name]
        example_id = f"mix-{seed}-{split}-{i:05d}"
        sources = fresh_rows[name]
        duplicate, source_id = "no", None
        if split == "train" and is_duplicate_row(i) and sources:
            source_id, source, wording = rng.choice(sources)
            item = skill.renumber(rng, source) if skill.renumber and rng.random() < 0.5 else source
            key = item_key(name, item)
            if item != source and key not in seen and split_of(name, item) == "train":
                duplicate, wording = "renumbered", rng.randrange(len(skill.wordings(item)))
                seen.add(key)
            else:  # the same item, asked another way
                item, duplicate = source, "reworded"
                others = [w for w in range(len(skill.wordings(item))) if w != wording]
                wording = rng.choice(others)
        else:
            item = _fresh(skill, rng, split, seen)
            seen.add(item_key(name, item))
            wording = rng.randrange(len(skill.wordings(item)))
            sources.append((example_id, item, wording))
        examples.append(Example(
            id=example_id,
            question=skill.wordings(item)[wording],
            answer=skill.answer(item),
            meta={"skill": name, "level": skill.level, "duplicate": duplicate, "duplicate_of": source_id},
        ))
        keys.append(item_key(name, item))
    return examples, keys
