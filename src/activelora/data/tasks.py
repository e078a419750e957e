"""Tasks: how an example becomes a prompt and a training target, and how an answer is read back.

A task is found by name in :data:`TASKS` (``get_task("gsm8k")``). Prompts use no chat
template (the model layer may add one)::

    Question: {question}
    Answer:

and targets start with one space, e.g. ``" 3 * 12 = 36. 50 - 36 = 14. The final answer is 14."``.
``extract`` reads the final answer from generated text (or from a target) and normalises
it; ``gold`` does the same for the example's gold answer; ``is_correct`` compares the two.

To add a task: subclass :class:`Task`, set ``name``, ``max_new_tokens`` and ``stop_strings``,
write ``extract`` (and ``target``/``prompt`` where the defaults do not fit) and decorate the
class with ``@TASKS.register("name")``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from ..errors import DataError
from ..registry import Registry
from .example import Example
from .arith import DEV_START as ARITH_DEV_START
from .mix import DEV_CLEAR_OF_TRAIN_ROWS, DEV_SPLITS

NEXT_QUESTION = "\nQuestion:"  # a model that starts a new example has finished its answer


class Task:
    """Base class; see the module docstring."""

    name: str = "task"
    max_new_tokens: int = 64
    stop_strings: tuple[str, ...] = (NEXT_QUESTION, "\n\n")
    # More test sets, evaluated beside the main one every round: for each main test split,
    # metric name -> the split that holds it. Round metrics then carry ``accuracy_<name>``
    # next to ``accuracy``.
    extra_test_splits: dict[str, dict[str, str]] = {}
    # For a main test split drawn from the train side (a dev split): how many leading train
    # rows it is guaranteed to avoid, so the loader can refuse a pool that would meet it.
    dev_clear_of_train_rows: dict[str, int] = {}

    def prompt(self, example: Example) -> str:
        return f"Question: {example.question.strip()}\nAnswer:"

    def target(self, example: Example) -> str:
        return " " + self.answer_text(example).strip()

    def extract(self, text: str) -> str | None:
        raise NotImplementedError

    def gold(self, example: Example) -> str:
        found = self.extract(self.answer_text(example))
        if found is None:
            raise DataError(
                f"example {example.id!r}: no {self.name} answer found in {_clip(example.answer)!r}"
            )
        return found

    def is_correct(self, text: str, example: Example) -> bool:
        predicted = self.extract(text)
        return predicted is not None and predicted == self.gold(example)

    # -- helpers
    def answer_text(self, example: Example) -> str:
        """The gold answer as given; :class:`DataError` for an unlabelled example."""
        if example.answer is None:
            raise DataError(f"example {example.id!r} has no answer (unlabelled)")
        return example.answer

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


TASKS: Registry[type[Task]] = Registry("task")


def get_task(name: str) -> Task:
    """A fresh instance of the task registered as ``name``."""
    return TASKS.get(name)()


_KNOWN_SOURCES = (("gsm8k", "gsm8k"), ("boolq", "boolq"), ("openbookqa", "obqa"), ("obqa", "obqa"))


def infer_task(source: str) -> str:
    """``arith`` for the embedded dataset; ``gsm8k``/``boolq``/``obqa`` when the source (a path
    or a hub name) mentions one, case-insensitively (the last mention wins, so the innermost
    folder decides); otherwise ``plain``."""
    if source in ("arith", "mix"):  # the embedded generators
        return source
    lowered = source.lower()
    hits = [(lowered.rfind(key), task) for key, task in _KNOWN_SOURCES if key in lowered]
    return max(hits)[1] if hits else "plain"


def _clip(text: str | None, width: int = 60) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def _before_next_question(text: str) -> str:
    cut = text.find(NEXT_QUESTION)
    return text if cut < 0 else text[:cut]


# --------------------------------------------------------------------------- numbers

# A number as written in word problems: optional sign, "$", thousands commas, decimals.
# The sign only counts when it does not follow a word character ("50-36" is 50 and 36).
_NUMBER = r"(?:(?<![\w.])-)?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_FINAL_RE = re.compile(r"final answer is\s*[:=]?\s*(" + _NUMBER + ")", re.IGNORECASE)
_HASHES_RE = re.compile(r"####\s*(" + _NUMBER + ")")
_CALCULATOR_RE = re.compile(r"<<[^<>]*>>")


def normalize_number(text: str) -> str | None:
    """Canonical form of a number: ``"$1,080."`` -> ``"1080"``, ``"72.0"`` -> ``"72"``,
    ``"0.50"`` -> ``"0.5"``, ``"-0"`` -> ``"0"``. ``None`` when ``text`` is not a number.

    Two numbers are equal as exact decimals iff their canonical forms are equal.
    """
    cleaned = text.strip().rstrip(".").replace(",", "").replace("$", "").replace(" ", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value.adjusted() > 60:  # "1e999999": a unique exponent form, not a huge string
        sign, digits, exponent = value.as_tuple()
        text = "".join(map(str, digits)).rstrip("0")
        exponent += len(digits) - len(text)
        return f"{'-' if sign else ''}{text}E{exponent}"
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def numbers_equal(a: str, b: str) -> bool:
    """Exact decimal equality of two number strings (``"72"`` == ``"72.0"`` == ``"$72."``)."""
    x, y = normalize_number(a), normalize_number(b)
    return x is not None and y is not None and Fraction(x) == Fraction(y)


@TASKS.register("gsm8k")
class GSM8KTask(Task):
    """Grade-school maths with a chain of thought.

    The gold answer is GSM8K's ``reasoning\\n#### N`` (``The final answer is N`` or a bare
    number are accepted too). The target is the reasoning without the ``<<a*b=c>>``
    calculator annotations, one line per step, then ``The final answer is N.``. ``extract``
    takes the number after ``####``, else after the last ``final answer is``, else the last
    number in the text.
    """

    name = "gsm8k"
    max_new_tokens = 256
    stop_strings = (NEXT_QUESTION, "\n\n")

    def extract(self, text: str) -> str | None:
        text = _before_next_question(text)
        for pattern in (_HASHES_RE, _FINAL_RE):
            hits = pattern.findall(text)
            if hits:
                return normalize_number(hits[-1])
        hits = _NUMBER_RE.findall(text)
        return normalize_number(hits[-1]) if hits else None

    def target(self, example: Example) -> str:
        answer = self.answer_text(example)
        final = self.gold(example)
        if "####" in answer:
            reasoning = _CALCULATOR_RE.sub("", answer.rpartition("####")[0])
        elif _FINAL_RE.search(answer):  # already in the target's form
            return " " + "\n".join(line.strip() for line in answer.splitlines() if line.strip())
        else:  # a bare number
            reasoning = ""
        lines = [line.strip() for line in reasoning.splitlines() if line.strip()]
        return " " + "\n".join(lines + [f"The final answer is {final}."])

    def is_correct(self, text: str, example: Example) -> bool:
        predicted = self.extract(text)
        return predicted is not None and numbers_equal(predicted, self.gold(example))


@TASKS.register("arith")
class ArithTask(GSM8KTask):
    """The embedded generator's problems (:mod:`activelora.data.arith`): answers are one line
    of steps ending ``The final answer is N.``, so generation stops at the first newline."""

    name = "arith"
    max_new_tokens = 80
    stop_strings = ("\n", NEXT_QUESTION, "\n\n")
    dev_clear_of_train_rows = {"dev": ARITH_DEV_START}

    def target(self, example: Example) -> str:
        answer = " ".join(self.answer_text(example).split())
        if "The final answer is" in answer:
            return " " + answer
        return super().target(example)


# --------------------------------------------------------------------------- mix


@TASKS.register("mix")
class MixTask(Task):
    """The embedded ``mix`` pool (:mod:`activelora.data.mix`): every answer is one short line
    (a number, a word or two, letters, a comma-separated list), read back exactly.

    ``extract`` takes the first non-empty line and, when it says ``... is X`` or ``... are X``
    (an instruct model's ``The plural of box is boxes.``), the ``X`` after the first such verb;
    then drops quotes and a final period, normalises spaces (one between words, ``", "`` between
    list items) and lower-cases (every gold answer is lower case or digits). The main test
    split ``test`` weights every skill equally; ``test_pool_like`` (skills at their pool
    shares) is reported as ``accuracy_pool_like``. With ``data.test_split: dev`` (tuning)
    the pair is ``dev`` and ``dev_pool_like``, both from the train side.
    """

    name = "mix"
    max_new_tokens = 24
    stop_strings = (NEXT_QUESTION, "\n\n")
    extra_test_splits = {"test": {"pool_like": "test_pool_like"}, "dev": {"pool_like": "dev_pool_like"}}
    dev_clear_of_train_rows = {split: DEV_CLEAR_OF_TRAIN_ROWS for split in DEV_SPLITS}

    def extract(self, text: str) -> str | None:
        lines = [line.strip() for line in _before_next_question(text).splitlines() if line.strip()]
        if not lines:
            return None
        line = lines[0]
        stated = _STATED.search(line)
        if stated:
            line = stated.group(1)
        line = re.sub(r"\s*,\s*", ", ", " ".join(line.split()))
        return line.strip().rstrip(".").strip().strip("\"'").strip().lower() or None


_STATED = re.compile(r"\b(?:is|are)\s*:?\s+(.+)$")  # "The plural of box is boxes." -> "boxes."


# --------------------------------------------------------------------------- true/false

_BOOL_WORDS = {"true": "true", "yes": "true", "false": "false", "no": "false"}
_BOOL_AFTER_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*\W?\s*(true|false|yes|no)\b", re.IGNORECASE)
_BOOL_ANY = re.compile(r"\b(true|false|yes|no)\b", re.IGNORECASE)
_BOOLQ_WRAPPER = re.compile(
    r"^\s*please answer the following question with true or false,\s*question:\s*(.*?)"
    r"\s*(?:answer format:\s*true\s*/\s*false\s*)?$",
    re.IGNORECASE | re.DOTALL,
)


@TASKS.register("boolq")
class BoolQTask(Task):
    """Yes/no questions. STAR's release writes gold answers ``the correct answer is true`` and
    wraps each question in an instruction, which the prompt drops to stay short. ``extract``
    returns ``"true"``/``"false"`` (``yes``/``no`` count too), any case; the word after
    ``answer is`` wins, else the first such word."""

    name = "boolq"
    max_new_tokens = 12
    stop_strings = ("\n", NEXT_QUESTION, "\n\n")

    def prompt(self, example: Example) -> str:
        question = example.question.strip()
        match = _BOOLQ_WRAPPER.match(question)
        if match:
            question = match.group(1).strip()
        return f"Question: {question.rstrip('?')}? True or false?\nAnswer:"

    def target(self, example: Example) -> str:
        return f" The correct answer is {self.gold(example)}."

    def extract(self, text: str) -> str | None:
        text = _before_next_question(text)
        match = _BOOL_AFTER_ANSWER.search(text) or _BOOL_ANY.search(text)
        return _BOOL_WORDS[match.group(1).lower()] if match else None


# --------------------------------------------------------------------------- multiple choice

_OPTION_LINE = re.compile(r"^\s*Answer([A-D])\s*:?\s?(.*)$")
_TRAILER = re.compile(r"\n?\s*The correct answer is\s*$", re.IGNORECASE)
_LETTER_AFTER_ANSWER = re.compile(r"(?i:answer)\s*(?i:is)?\s*:?\s*\(?([A-D])(?![A-Za-z])")
_LETTER_FIRST = re.compile(r"^\s*\(?([A-D])(?![A-Za-z])")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@TASKS.register("obqa")
class OBQATask(Task):
    """Four-option multiple choice (OpenBookQA in STAR's release): the question text holds the
    options as ``AnswerA text`` (train) or ``AnswerA: text`` (test) lines and ends with ``The
    correct answer is``; the gold answer is one letter. The prompt lists the options as
    ``A. text``; the target is ``" The correct answer is B."``."""

    name = "obqa"
    max_new_tokens = 10
    stop_strings = ("\n", NEXT_QUESTION, "\n\n")

    @staticmethod
    def parse(question: str) -> tuple[str, dict[str, str]]:
        """(stem, {letter: option text}); no options when the text has no ``AnswerX`` lines."""
        stem_lines: list[str] = []
        options: dict[str, str] = {}
        for line in _TRAILER.sub("", question).splitlines():
            match = _OPTION_LINE.match(line)
            if match:
                options[match.group(1)] = match.group(2).strip()
            elif options:  # text after the options continues the last one
                last = list(options)[-1]
                options[last] = f"{options[last]} {line.strip()}".strip()
            else:
                stem_lines.append(line)
        return "\n".join(stem_lines).strip(), options

    def prompt(self, example: Example) -> str:
        stem, options = self.parse(example.question)
        lines = [f"Question: {stem}"] + [f"{letter}. {text}" for letter, text in options.items()]
        return "\n".join(lines) + "\nAnswer:"

    def target(self, example: Example) -> str:
        return f" The correct answer is {self.gold(example)}."

    def extract(self, text: str) -> str | None:
        text = _before_next_question(text)
        match = _LETTER_AFTER_ANSWER.search(text) or _LETTER_FIRST.search(text)
        return match.group(1) if match else None

    def is_correct(self, text: str, example: Example) -> bool:
        """A letter, or else the text of exactly one option (``"a marsh"`` for ``A. a marsh``)."""
        gold = self.gold(example)
        predicted = self.extract(text)
        if predicted is None:
            first_line = _words(_before_next_question(text).strip().split("\n", 1)[0])
            _, options = self.parse(example.question)
            named = [letter for letter, option in options.items() if _words(option) == first_line]
            predicted = named[0] if len(named) == 1 else None
        return predicted == gold


# --------------------------------------------------------------------------- plain text


def _collapse(text: str) -> str:
    return " ".join(text.split())


@TASKS.register("plain")
class PlainTask(Task):
    """Any question/answer pairs: the prompt is the question exactly, the target the answer
    exactly; correct means equal after collapsing whitespace. Generation stops at a blank
    line, so answers that contain one need a task of their own."""

    name = "plain"
    max_new_tokens = 128
    stop_strings = ("\n\n",)

    def prompt(self, example: Example) -> str:
        return example.question

    def target(self, example: Example) -> str:
        return self.answer_text(example)

    def extract(self, text: str) -> str | None:
        return _collapse(text) or None
