"""The embedded ``arith`` dataset: GSM8K-style word problems with short worked answers.

Every problem belongs to a *family* (:data:`FAMILIES`) that fixes its structure and number of
steps; a family draws its surface form (names, items, phrasing) and its numbers at random.
Families differ in difficulty and in frequency, so that which examples an active learner
labels matters: one-step problems with small numbers are common, four-step chains rare.

An answer writes one sentence per step and ends with the final number::

    3 * 12 = 36. 50 - 36 = 14. The final answer is 14.

Guarantees:

* Deterministic: the generator of a split is ``random.Random(f"arith-{seed}-{split}")``
  (string seeds are hashed with SHA-512, not ``hash()``), so every process gets the same list.
* Train and test never share a question text, for any pair of seeds: a question belongs to
  test iff ``sha1(question) % TEST_SHARE == 0`` and each split redraws questions that belong
  to the other one (or that it already holds). As a consequence ``generate_arith(s, n)`` is
  the first ``n`` rows of ``generate_arith(s, m)`` for any ``m >= n``.
* Every intermediate result is a non-negative integer (draws that break this are redrawn).

The number ranges below are the difficulty knobs; :data:`FAMILIES` holds the frequencies.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from math import gcd
from typing import Callable, Mapping

from ..errors import DataError
from .example import Example

DEFAULT_SIZES = {"train": 2000, "test": 500, "dev": 500}
# ``dev`` (for tuning without a test set) is train rows [DEV_START, DEV_START + 500): a pool and
# probe of at most DEV_START rows never meet it, and the loader refuses a longer one.
DEV_START = 1500
TEST_SHARE = 5  # one question text in TEST_SHARE belongs to the test split
MAX_REDRAWS = 20_000  # consecutive rejected draws before giving up (n too large)

# --------------------------------------------------------------------------- difficulty knobs
# All ranges are inclusive.
ADD_RANGE = (12, 99)  # add_sub: operands
FACTOR_RANGE = (3, 12)  # multiply/divide: the small factor or divisor
MULTI_RANGE = (13, 99)  # multiply: the large factor (two-digit by one-digit)
QUOTIENT_RANGE = (3, 40)  # divide: the quotient
COUNT_RANGE = (2, 9)  # change/budget: how many items are bought
PRICE_RANGE = (3, 35)  # change/budget: the price of one item
BILLS = (10, 20, 50, 100, 200)  # change: notes a customer may hand over
PERCENTS = (5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80)
FRACTIONS = ((1, 2), (1, 3), (2, 3), (1, 4), (3, 4), (1, 5), (2, 5), (3, 5), (1, 6), (5, 6))
WHOLE_RANGE = (20, 480)  # percent: the whole
BULK_RANGE = (11, 64)  # bulk: both factors (two-digit by two-digit)
EXTRA_RANGE = (7, 180)  # bulk: the amount added or removed afterwards
COMPARE_GROUPS = (3, 16)  # compare: groups per person
COMPARE_SIZES = (6, 45)  # compare: items per group
WAGE_RANGE = (8, 26)  # budget: hourly wage
HOURS_RANGE = (4, 40)  # budget: hours worked
SHARE_RANGE = (2, 9)  # budget: how many equal parts the rest is split into

NAMES = (
    "Ava", "Ben", "Chloe", "Diego", "Emma", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wes", "Yuki", "Zoe",
)
ITEMS = (
    "apples", "marbles", "stickers", "pencils", "cookies", "stamps", "shells", "cards",
    "beads", "books", "eggs", "balloons", "crayons", "buttons", "oranges", "toy cars",
)
GOODS = (  # (one, many) things with a price
    ("notebook", "notebooks"), ("sandwich", "sandwiches"), ("ticket", "tickets"),
    ("toy", "toys"), ("plant", "plants"), ("shirt", "shirts"), ("game", "games"),
    ("lamp", "lamps"), ("cake", "cakes"), ("ball", "balls"), ("puzzle", "puzzles"),
)
CONTAINERS = (("box", "boxes"), ("bag", "bags"), ("jar", "jars"), ("basket", "baskets"), ("tin", "tins"))


class _Reject(Exception):
    """A draw that breaks an invariant (negative or fractional result): draw again."""


class _Work:
    """The worked steps of one answer. ``calc(a, "*", b, "/", c)`` evaluates left to right,
    records ``"a * b / c = v."`` and returns ``v``; a negative or fractional value rejects."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.value: int | None = None

    def calc(self, *terms: int | str) -> int:
        value = terms[0]
        assert isinstance(value, int)
        for op, operand in zip(terms[1::2], terms[2::2]):
            assert isinstance(operand, int)
            if op == "+":
                value += operand
            elif op == "-":
                value -= operand
            elif op == "*":
                value *= operand
            elif op == "/":
                if operand == 0 or value % operand:
                    raise _Reject
                value //= operand
            else:  # pragma: no cover - a typo in a family
                raise ValueError(f"unknown operator {op!r}")
            if value < 0:
                raise _Reject
        self.lines.append(" ".join(str(t) for t in terms) + f" = {value}.")
        self.value = value
        return value

    def answer(self) -> str:
        return " ".join(self.lines) + f" The final answer is {self.value}."


def _num(rng: random.Random, bounds: tuple[int, int]) -> int:
    return rng.randint(bounds[0], bounds[1])


def _people(rng: random.Random, k: int = 2) -> list[str]:
    return rng.sample(NAMES, k)


# --------------------------------------------------------------------------- families
# Each family draws numbers and wording from ``rng``, records its steps in ``w`` and
# returns the question text.


def _add_sub(rng: random.Random, w: _Work) -> str:
    a, b = _people(rng)
    item = rng.choice(ITEMS)
    x = _num(rng, ADD_RANGE)
    y = _num(rng, ADD_RANGE)
    variant = rng.randrange(8)
    if variant < 4:  # addition
        w.calc(x, "+", y)
        return (
            f"{a} has {x} {item}. {b} gives {a} {y} more. How many {item} does {a} have now?",
            f"{a} picked {x} {item} in the morning and {y} in the afternoon. "
            f"How many {item} did {a} pick in total?",
            f"A {rng.choice(CONTAINERS)[0]} holds {x} {item}. {a} puts in {y} more. "
            f"How many {item} are in it now?",
            f"{a} collected {x} {item} last week and {y} this week. "
            f"How many {item} has {a} collected altogether?",
        )[variant]
    x, y = max(x, y), min(x, y)
    if x == y:
        raise _Reject
    w.calc(x, "-", y)
    return (
        f"{a} had {x} {item} and gave {y} of them to {b}. How many {item} does {a} have left?",
        f"A shop had {x} {item}. After {y} were sold, how many {item} were left?",
        f"{a} needs {x} {item} for a project and already has {y}. How many more {item} does {a} need?",
        f"{a} has {x} {item} and {b} has {y} {item}. How many more {item} does {a} have than {b}?",
    )[variant - 4]


def _multiply(rng: random.Random, w: _Work) -> str:
    a = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    k = _num(rng, FACTOR_RANGE)
    m = _num(rng, MULTI_RANGE)
    variant = rng.randrange(5)
    if variant == 0:
        w.calc(k, "*", m)
        return f"{a} buys {k} packs of {item}. Each pack has {m} {item}. How many {item} does {a} buy?"
    if variant == 1:
        w.calc(k, "*", m)
        return f"A bus has {k} rows with {m} seats in each row. How many seats are on the bus?"
    if variant == 2:
        w.calc(m, "*", k)
        return f"{a} reads {m} pages every day for {k} days. How many pages does {a} read?"
    if variant == 3:
        box, boxes = rng.choice(CONTAINERS)
        w.calc(m, "*", k)
        return f"Each {box} holds {m} {item}. How many {item} are in {k} {boxes}?"
    w.calc(m, "*", k)
    return f"{a} saves ${m} every week. How many dollars does {a} save in {k} weeks?"


def _divide(rng: random.Random, w: _Work) -> str:
    a = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    d = _num(rng, FACTOR_RANGE)
    q = _num(rng, QUOTIENT_RANGE)
    total = d * q
    variant = rng.randrange(5)
    if variant == 0:
        w.calc(total, "/", d)
        return f"{a} shares {total} {item} equally among {d} friends. How many {item} does each friend get?"
    if variant == 1:
        w.calc(total, "/", d)
        return f"{total} students are split into {d} equal teams. How many students are on each team?"
    if variant == 2:
        w.calc(total, "/", d)
        return (f"{a} reads a {total}-page book in {d} days, reading the same number of pages "
                f"each day. How many pages does {a} read each day?")
    if variant == 3:
        w.calc(total, "/", q)
        return f"{total} {item} are packed into bags of {q}. How many bags are filled?"
    w.calc(total, "/", d)
    return f"A ribbon {total} cm long is cut into {d} equal pieces. How many cm long is each piece?"


def _change(rng: random.Random, w: _Work) -> str:
    a = rng.choice(NAMES)
    one, many = rng.choice(GOODS)
    k = _num(rng, COUNT_RANGE)
    p = _num(rng, PRICE_RANGE)
    variant = rng.randrange(4)
    if variant == 3:  # a total instead of change
        extra_one, _ = rng.choice([g for g in GOODS if g[0] != one])
        q = _num(rng, PRICE_RANGE)
        cost = w.calc(k, "*", p)
        w.calc(cost, "+", q)
        return (f"{a} buys {k} {many} at ${p} each and one {extra_one} for ${q}. "
                f"How many dollars does {a} spend in total?")
    bills = [b for b in BILLS if b > k * p]
    if not bills:
        raise _Reject
    bill = rng.choice(bills[:2])
    cost = w.calc(k, "*", p)
    w.calc(bill, "-", cost)
    return (
        f"{a} buys {k} {many} for ${p} each and pays with a ${bill} bill. "
        f"How many dollars of change does {a} get?",
        f"{a} has ${bill}. {a} buys {k} {many} that cost ${p} each. How many dollars does {a} have left?",
        f"One {one} costs ${p}. {a} buys {k} of them and hands the cashier ${bill}. "
        f"How many dollars of change should {a} get back?",
    )[variant]


def _percent(rng: random.Random, w: _Work) -> str:
    a = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    variant = rng.randrange(5)
    if variant == 4:  # a fraction of the whole
        num, den = rng.choice(FRACTIONS)
        whole = den * rng.randint(max(1, WHOLE_RANGE[0] // den), WHOLE_RANGE[1] // den)
        part = w.calc(whole, "/", den) if num == 1 else w.calc(whole, "/", den, "*", num)
        w.calc(whole, "-", part)
        return f"{a} has {whole} {item} and uses {num}/{den} of them. How many {item} are left?"
    pct = rng.choice(PERCENTS)
    unit = 100 // gcd(pct, 100)  # the smallest whole with an integer pct% of it
    whole = unit * rng.randint(max(1, WHOLE_RANGE[0] // unit), WHOLE_RANGE[1] // unit)
    part = w.calc(whole, "*", pct, "/", 100)
    if variant == 3:
        w.calc(whole, "+", part)
        return (f"A town had {whole} trees. The number of trees grew by {pct}%. "
                f"How many trees does the town have now?")
    w.calc(whole, "-", part)
    return (
        f"A store has {whole} {item}. It sells {pct}% of them. How many {item} are left?",
        f"A jacket costs ${whole}. It is on sale for {pct}% off. What is the sale price in dollars?",
        f"{a} has {whole} {item} and gives away {pct}% of them. How many {item} does {a} keep?",
    )[variant]


def _bulk(rng: random.Random, w: _Work) -> str:
    a = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    x = _num(rng, BULK_RANGE)
    y = _num(rng, BULK_RANGE)
    c = _num(rng, EXTRA_RANGE)
    variant = rng.randrange(4)
    total = w.calc(x, "*", y)
    if variant < 2:
        w.calc(total, "-", c)  # rejects when c > total
        return (
            f"A factory fills {x} crates with {y} bottles each. {c} bottles break. "
            f"How many bottles are not broken?",
            f"A theater has {x} rows of {y} seats. {c} seats are empty. How many seats are taken?",
        )[variant]
    w.calc(total, "+", c)
    return (
        f"A farmer plants {x} rows of {y} trees and then {c} more trees. "
        f"How many trees does the farmer plant?",
        f"{a} packs {x} boxes with {y} {item} in each box and has {c} {item} left over. "
        f"How many {item} did {a} start with?",
    )[variant - 2]


def _compare(rng: random.Random, w: _Work) -> str:
    a, b = _people(rng)
    item = rng.choice(ITEMS)
    g1, g2 = _num(rng, COMPARE_GROUPS), _num(rng, COMPARE_GROUPS)
    s1, s2 = _num(rng, COMPARE_SIZES), _num(rng, COMPARE_SIZES)
    if g1 * s1 == g2 * s2:
        raise _Reject
    if g1 * s1 < g2 * s2:  # the first person has more
        g1, s1, g2, s2 = g2, s2, g1, s1
    variant = rng.randrange(4)
    if variant == 1:  # the question names the size before the count
        first, second = w.calc(s1, "*", g1), w.calc(s2, "*", g2)
    else:
        first, second = w.calc(g1, "*", s1), w.calc(g2, "*", s2)
    if variant == 0:
        w.calc(first, "-", second)
        return (f"{a} buys {g1} boxes of {s1} {item}. {b} buys {g2} boxes of {s2} {item}. "
                f"How many more {item} does {a} have than {b}?")
    if variant == 1:
        w.calc(first, "-", second)
        return (f"{a} runs {s1} laps a day for {g1} days. {b} runs {s2} laps a day for {g2} days. "
                f"How many more laps does {a} run than {b}?")
    if variant == 2:
        w.calc(first, "+", second)
        return (f"A red shelf has {g1} rows of {s1} {item} and a blue shelf has {g2} rows of {s2} {item}. "
                f"How many {item} are on both shelves?")
    w.calc(first, "+", second)
    return (f"{a} bakes {g1} trays of {s1} cookies and {b} bakes {g2} trays of {s2} cookies. "
            f"How many cookies do they bake together?")


def _budget(rng: random.Random, w: _Work) -> str:
    a = rng.choice(NAMES)
    d = _num(rng, SHARE_RANGE)
    variant = rng.randrange(3)
    if variant == 0:
        wage, hours = _num(rng, WAGE_RANGE), _num(rng, HOURS_RANGE)
        k, p = _num(rng, COUNT_RANGE), _num(rng, PRICE_RANGE)
        _, many = rng.choice(GOODS)
        if (wage * hours - k * p) % d or wage * hours <= k * p:
            raise _Reject
        earned = w.calc(wage, "*", hours)
        spent = w.calc(k, "*", p)
        rest = w.calc(earned, "-", spent)
        w.calc(rest, "/", d)
        return (f"{a} earns ${wage} an hour and works {hours} hours. {a} buys {k} {many} for ${p} each "
                f"and splits the money left equally into {d} jars. How many dollars go in each jar?")
    x, y = _num(rng, COMPARE_GROUPS), _num(rng, COMPARE_SIZES)
    u, v = _num(rng, COMPARE_GROUPS), _num(rng, COMPARE_SIZES)
    if variant == 1:
        if (x * y + u * v) % d:
            raise _Reject
        first = w.calc(x, "*", y)
        second = w.calc(u, "*", v)
        both = w.calc(first, "+", second)
        w.calc(both, "/", d)
        return (f"A school orders {x} boxes of {y} pencils and {u} boxes of {v} pens. It shares all of "
                f"them equally among {d} classes. How many pencils and pens does each class get?")
    if x * y <= u * v or (x * y - u * v) % d:
        raise _Reject
    made = w.calc(x, "*", y)
    sold = w.calc(u, "*", v)
    left = w.calc(made, "-", sold)
    w.calc(left, "/", d)
    return (f"A baker makes {x} trays of {y} muffins and sells {u} bags of {v} muffins. The muffins "
            f"left are packed equally into {d} boxes. How many muffins are in each box?")


@dataclass(frozen=True)
class Family:
    """A problem family: ``weight`` is its share of the generated rows."""

    name: str
    weight: float
    steps: int
    description: str
    make: Callable[[random.Random, _Work], str]


FAMILIES: tuple[Family, ...] = (
    Family("add_sub", 0.28, 1, "one addition or subtraction of two-digit numbers", _add_sub),
    Family("multiply", 0.16, 1, "one-digit by two-digit multiplication", _multiply),
    Family("divide", 0.10, 1, "a division that comes out even", _divide),
    Family("change", 0.14, 2, "buy items, then change from a bill (or add one more item)", _change),
    Family("percent", 0.10, 2, "a percentage or fraction of a quantity, then the rest or the new total",
           _percent),
    Family("bulk", 0.08, 2, "two-digit by two-digit multiplication, then add or remove some", _bulk),
    Family("compare", 0.08, 3, "two products, then their difference or sum", _compare),
    Family("budget", 0.06, 4, "two products, their difference or sum, then an even split", _budget),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES)


def split_of(question: str) -> str:
    """The split a question text belongs to (fixed by its SHA-1, whatever the seed)."""
    digest = int(hashlib.sha1(question.encode("utf-8")).hexdigest()[:12], 16)
    return "test" if digest % TEST_SHARE == 0 else "train"


def _weights(weights: Mapping[str, float] | None) -> tuple[list[Family], list[float]]:
    if weights is None:
        return list(FAMILIES), [f.weight for f in FAMILIES]
    unknown = sorted(set(weights) - set(FAMILY_NAMES))
    if unknown:
        raise DataError(f"arith: unknown families {unknown}; valid: {', '.join(FAMILY_NAMES)}")
    if any(v < 0 for v in weights.values()) or not any(v > 0 for v in weights.values()):
        raise DataError(f"arith: family weights must be >= 0 with one > 0, got {dict(weights)}")
    families = [f for f in FAMILIES if weights.get(f.name, 0) > 0]
    return families, [float(weights[f.name]) for f in families]


def _draw(family: Family, rng: random.Random) -> tuple[str, _Work]:
    """One problem of ``family``; invalid number draws are redrawn within the family so
    that rejections do not shift the family frequencies."""
    for _ in range(1000):
        work = _Work()
        try:
            return family.make(rng, work), work
        except _Reject:
            continue
    raise RuntimeError(f"arith family {family.name!r} rejects almost every draw; check its ranges")


def generate_arith(
    split: str,
    n: int | None = None,
    seed: int = 0,
    *,
    weights: Mapping[str, float] | None = None,
) -> list[Example]:
    """``n`` word problems of ``split`` (``train``: 2000, ``test``: 500 by default; ``dev``:
    up to 500, the train rows from :data:`DEV_START`, for tuning on the train side).

    ``weights`` (family name -> relative weight; missing families get 0) replaces the
    declared frequencies. Ids are ``arith-{seed}-{split}-{index:05d}``; ``meta`` holds the
    family and the number of steps.
    """
    if split not in DEFAULT_SIZES:
        raise DataError(f"arith: unknown split {split!r}; valid: {', '.join(DEFAULT_SIZES)}")
    if n is None:
        n = DEFAULT_SIZES[split]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"arith: the number of problems must be a non-negative integer, got {n!r}")
    if split == "dev":
        if n > DEFAULT_SIZES["dev"]:
            raise DataError(f"arith: the dev split holds {DEFAULT_SIZES['dev']} problems, not {n}")
        return generate_arith("train", DEV_START + n, seed, weights=weights)[DEV_START:]
    families, probs = _weights(weights)
    rng = random.Random(f"arith-{seed}-{split}")
    seen: set[str] = set()
    examples: list[Example] = []
    redraws = 0
    while len(examples) < n:
        family = rng.choices(families, probs)[0]
        question, work = _draw(family, rng)
        if question in seen or split_of(question) != split:
            redraws += 1
            if redraws > MAX_REDRAWS:
                raise DataError(
                    f"arith: cannot draw {n} distinct {split} problems (stuck at {len(examples)}); "
                    f"ask for fewer or widen the number ranges"
                )
            continue
        redraws = 0
        assert len(work.lines) == family.steps, (family.name, work.lines)
        seen.add(question)
        examples.append(Example(
            id=f"arith-{seed}-{split}-{len(examples):05d}",
            question=question,
            answer=work.answer(),
            meta={"family": family.name, "steps": family.steps},
        ))
    return examples
