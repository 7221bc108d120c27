"""A classic ELIZA: the DOCTOR script's technique, in plain typed Python.

How a reply is made (after Weizenbaum, "ELIZA", CACM 9(1), 1966):

1. The input is lower-cased, split into words and into clauses (at punctuation and "but"),
   and a few words are normalised first ("i'm" -> "i am", "dont" -> "don't", "machine" ->
   "computer", ...).
2. The first clause that contains a keyword is used. Its keywords are tried from the highest
   rank down (ties: left to right).
3. Each keyword has decomposition patterns, tried in order. A pattern is a list of literal
   words, ``*`` (any number of words) and ``@group`` (one word of a synonym group). Wildcards
   and groups are captured and numbered from 1.
4. The first pattern that matches picks a reassembly template. The templates of a pattern
   are used in turn (each pattern cycles through its templates); ``(n)`` is replaced by
   capture ``n`` with its pronouns reflected ("my" -> "your", "I am" -> "you are", ...).
   A template ``goto KEY`` continues with the patterns of keyword ``KEY``.
5. The keyword "my" also files a remark away in memory. When nothing matches, a remembered
   remark is brought back; otherwise a generic prompt is used.

Everything is deterministic for a given ``seed``: the seed only chooses where each template
cycle starts (and which goodbye is said).
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Eliza",
    "Keyword",
    "Pattern",
    "introduction",
    "is_goodbye",
    "match",
    "reflect",
]

# --- the script ---------------------------------------------------------------------------


def _words_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SYNONYMS: Mapping[str, frozenset[str]] = {
    "be": frozenset({"am", "is", "are", "was"}),
    "belief": frozenset({"feel", "think", "believe", "wish"}),
    "cannot": frozenset({"can't", "cannot"}),
    "desire": frozenset({"want", "need", "crave"}),
    "everyone": frozenset({"everyone", "everybody", "nobody", "noone"}),
    "family": _words_set(
        "mother mom mum father dad sister brother wife husband children child son daughter family"
    ),
    "happy": frozenset({"happy", "elated", "glad", "better", "cheerful"}),
    "sad": frozenset({"sad", "unhappy", "depressed", "sick", "miserable", "lonely"}),
}

# Words replaced before matching; a value may be several words.
_PRE: Mapping[str, tuple[str, ...]] = {
    "dont": ("don't",),
    "cant": ("can't",),
    "wont": ("won't",),
    "im": ("i", "am"),
    "i'm": ("i", "am"),
    "you're": ("you", "are"),
    "youre": ("you", "are"),
    "recollect": ("remember",),
    "dreamt": ("dreamed",),
}

# Pronoun reflection: "my" -> "your" and so on. "you" and the verb after a pronoun are
# handled in ``reflect`` since they depend on their neighbours.
_REFLECT: Mapping[str, str] = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "your": "my",
    "yours": "mine",
    "yourself": "myself",
    "you've": "I've",
    "you'll": "I'll",
    "you'd": "I'd",
    "we": "you",
    "us": "you",
    "our": "your",
    "ours": "yours",
}

# After one of these, "you" is an object ("tell you" -> "tell me"), not a subject.
_OBJECT_CONTEXT = _words_set(
    """
    to with about for at from of like love loves loved hate hates hated need needs want
    wants tell told see saw know knew help helps hurt hurts trust understand understands
    remind reminds ask asked call miss believe hear heard thank than against without by
    on upon into behind make makes made let give gave show teach pay and or trouble
    bother bothers annoy annoys frighten frightens scare scares worry worries
    """
)

# Before one of these, "you" is a subject ("you are" -> "I am").
_SUBJECT_CONTEXT = _words_set(
    """
    are were was will would can could should shall have had do did don't didn't can't
    won't might must may need want think feel know seem seemed said say
    """
)

_QUIT = frozenset({"bye", "goodbye", "quit", "exit", "farewell"})

_GOODBYES: tuple[str, ...] = (
    "Goodbye. It was nice talking to you.",
    "Goodbye. I hope our talk was useful to you.",
    "Goodbye. I look forward to our next session.",
)


@dataclass(frozen=True)
class Pattern:
    """One decomposition rule: a pattern and the templates it reassembles into."""

    words: tuple[str, ...]
    templates: tuple[str, ...]


@dataclass(frozen=True)
class Keyword:
    """A keyword, its rank (higher wins) and its decomposition rules, tried in order."""

    word: str
    rank: int
    patterns: tuple[Pattern, ...]


def _kw(word: str, rank: int, rules: Mapping[str, Sequence[str]]) -> Keyword:
    patterns = tuple(Pattern(tuple(p.split()), tuple(t)) for p, t in rules.items())
    return Keyword(word, rank, patterns)


# Keyword ranks: when a clause has several keywords, the highest rank is tried first.
_RANKS: Mapping[str, int] = {
    "remember": 5,
    "forget": 5,
    "if": 3,
    "dreamed": 4,
    "dream": 3,
    "name": 15,
    "computer": 50,
    "was": 2,
    "my": 2,
    "everyone": 2,
    "always": 1,
    "alike": 10,
    "like": 10,
}

_RULES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "sorry": {
        "*": (
            "Please don't apologise.",
            "Apologies are not necessary.",
            "I've told you that apologies are not required.",
            "It did not bother me. Please continue.",
        ),
    },
    "remember": {
        "* i remember *": (
            "Do you often think of (2)?",
            "Does thinking of (2) bring anything else to mind?",
            "What else do you remember?",
            "Why do you remember (2) just now?",
            "What in the present situation reminds you of (2)?",
        ),
        "* do you remember *": (
            "Did you think I would forget (2)?",
            "Why do you think I should recall (2) now?",
            "What about (2)?",
            "You mentioned (2)?",
        ),
        "*": ("goto xnone",),
    },
    "forget": {
        "* i forget *": (
            "Can you think of why you might forget (2)?",
            "Why can't you remember (2)?",
            "How often do you think of (2)?",
            "Does it bother you to forget that?",
        ),
        "* did you forget *": (
            "Why do you ask?",
            "Are you sure you told me?",
            "Would it bother you if I forgot (2)?",
        ),
        "*": ("goto xnone",),
    },
    "if": {
        "* if *": (
            "Do you think it's likely that (2)?",
            "Do you wish that (2)?",
            "What do you know about (2)?",
            "Really, if (2)?",
        ),
    },
    "dreamed": {
        "* i dreamed *": (
            "Really, (2)?",
            "Have you ever fantasised (2) while you were awake?",
            "Have you ever dreamed (2) before?",
        ),
        "*": ("goto dream",),
    },
    "dream": {
        "*": (
            "What does that dream suggest to you?",
            "Do you dream often?",
            "What persons appear in your dreams?",
            "Do you believe that dreams have something to do with your problem?",
        ),
    },
    "perhaps": {
        "*": (
            "You don't seem quite certain.",
            "Why the uncertain tone?",
            "Can't you be more positive?",
            "You aren't sure?",
            "Don't you know?",
        ),
    },
    "name": {
        "*": (
            "I am not interested in names.",
            "I've told you before, I don't care about names. Please continue.",
        ),
    },
    "computer": {
        "*": (
            "Do computers worry you?",
            "Why do you mention computers?",
            "What do you think machines have to do with your problem?",
            "Don't you think computers can help people?",
            "What about machines worries you?",
            "What do you think about machines?",
        ),
    },
    "am": {
        "* am i *": (
            "Do you believe you are (2)?",
            "Would you want to be (2)?",
            "Do you wish I would tell you you are (2)?",
            "What would it mean if you were (2)?",
        ),
        "*": ("goto i",),
    },
    "are": {
        "* are you *": (
            "Why are you interested in whether I am (2) or not?",
            "Would you prefer if I weren't (2)?",
            "Perhaps I am (2) in your fantasies.",
            "Do you sometimes think I am (2)?",
        ),
        "* are *": (
            "Did you think they might not be (2)?",
            "Would you like it if they were not (2)?",
            "What if they were not (2)?",
            "Possibly they are (2).",
        ),
    },
    "your": {
        "* your *": (
            "Why are you concerned over my (2)?",
            "What about your own (2)?",
            "Are you worried about someone else's (2)?",
            "Really, my (2)?",
        ),
    },
    "was": {
        "* was i *": (
            "What if you were (2)?",
            "Do you think you were (2)?",
            "Were you (2)?",
            "What would it mean if you were (2)?",
        ),
        "* i was *": (
            "Were you really?",
            "Why do you tell me you were (2) now?",
            "Perhaps I already know you were (2).",
        ),
        "* was you *": (
            "Would you like to believe I was (2)?",
            "What suggests that I was (2)?",
            "What do you think?",
            "Perhaps I was (2).",
        ),
        "*": ("goto xnone",),
    },
    "i": {
        "* i @desire *": (
            "What would it mean to you if you got (3)?",
            "Why do you want (3)?",
            "Suppose you got (3) soon.",
            "What if you never got (3)?",
            "What would getting (3) mean to you?",
        ),
        "* i am @sad *": (
            "I am sorry to hear that you are (2).",
            "Do you think that coming here will help you not to be (2)?",
            "I'm sure it's not pleasant to be (2).",
            "Can you explain what made you (2)?",
        ),
        "* i am @happy *": (
            "How have I helped you to be (2)?",
            "Has your treatment made you (2)?",
            "What makes you (2) just now?",
            "Can you explain why you are suddenly (2)?",
        ),
        "* i @belief you *": ("goto you",),
        "* i @belief *": (
            "Do you really think so?",
            "But you are not sure you (3).",
            "Do you really doubt you (3)?",
        ),
        "* i am *": (
            "Is it because you are (2) that you came to me?",
            "How long have you been (2)?",
            "Do you believe it is normal to be (2)?",
            "Do you enjoy being (2)?",
            "Do you know anyone else who is (2)?",
        ),
        "* i @cannot *": (
            "How do you know that you can't (3)?",
            "Have you tried?",
            "Perhaps you could (3) now.",
            "Do you really want to be able to (3)?",
            "What if you could (3)?",
        ),
        "* i don't *": (
            "Don't you really (2)?",
            "Why don't you (2)?",
            "Do you wish to be able to (2)?",
            "Does that trouble you?",
        ),
        "* i feel *": (
            "Tell me more about such feelings.",
            "Do you often feel (2)?",
            "Do you enjoy feeling (2)?",
            "Of what does feeling (2) remind you?",
        ),
        "* i * you *": (
            "Perhaps in your fantasies we (2) each other.",
            "Do you wish to (2) me?",
            "You seem to need to (2) me.",
            "Do you (2) anyone else?",
        ),
        "*": (
            "You say (1)?",
            "Can you elaborate on that?",
            "Do you say (1) for some special reason?",
            "That's quite interesting.",
        ),
    },
    "you": {
        "* you remind me of *": ("goto alike",),
        "* you are *": (
            "What makes you think I am (2)?",
            "Does it please you to believe I am (2)?",
            "Do you sometimes wish you were (2)?",
            "Perhaps you would like to be (2).",
        ),
        "* you * me *": (
            "Why do you think I (2) you?",
            "You like to think I (2) you, don't you?",
            "What makes you think I (2) you?",
            "Really, I (2) you?",
            "Do you wish to believe I (2) you?",
            "Suppose I did (2) you. What would that mean?",
            "Does someone else believe I (2) you?",
        ),
        "* you *": (
            "We were discussing you, not me.",
            "Oh, I (2)?",
            "You're not really talking about me, are you?",
            "What are your feelings now?",
        ),
    },
    "yes": {
        "*": (
            "You seem to be quite positive.",
            "You are sure.",
            "I see.",
            "I understand.",
        ),
    },
    "no": {
        "* no one *": ("goto everyone",),
        "*": (
            "Are you saying no just to be negative?",
            "You are being a bit negative.",
            "Why not?",
            "Why 'no'?",
        ),
    },
    "my": {
        "* my * @family *": (
            "Tell me more about your family.",
            "Who else in your family (4)?",
            "Your (3)?",
            "What else comes to mind when you think of your (3)?",
        ),
        "* my *": (
            "Your (2)?",
            "Why do you say your (2)?",
            "Does that suggest anything else which belongs to you?",
            "Is it important to you that your (2)?",
        ),
    },
    "can": {
        "* can you *": (
            "You believe I can (2), don't you?",
            "goto what",
            "You want me to be able to (2).",
            "Perhaps you would like to be able to (2) yourself.",
        ),
        "* can i *": (
            "Whether or not you can (2) depends on you more than on me.",
            "Do you want to be able to (2)?",
            "Perhaps you don't want to (2).",
        ),
        "*": ("goto what",),
    },
    "what": {
        "*": (
            "Why do you ask?",
            "Does that question interest you?",
            "What is it you really want to know?",
            "Are such questions much on your mind?",
            "What answer would please you most?",
            "What do you think?",
            "What comes to mind when you ask that?",
            "Have you asked such questions before?",
            "Have you asked anyone else?",
        ),
    },
    "because": {
        "*": (
            "Is that the real reason?",
            "Don't any other reasons come to mind?",
            "Does that reason seem to explain anything else?",
            "What other reasons might there be?",
        ),
    },
    "why": {
        "* why don't you *": (
            "Do you believe I don't (2)?",
            "Perhaps I will (2) in good time.",
            "Should you (2) yourself?",
            "You want me to (2)?",
        ),
        "* why can't i *": (
            "Do you think you should be able to (2)?",
            "Do you want to be able to (2)?",
            "Do you believe this will help you to (2)?",
            "Have you any idea why you can't (2)?",
        ),
        "*": ("goto what",),
    },
    "everyone": {
        "* @everyone *": (
            "Really, (2)?",
            "Surely not (2).",
            "Can you think of anyone in particular?",
            "Who, for example?",
            "Are you thinking of a very special person?",
            "Who, may I ask?",
            "Someone special perhaps?",
        ),
    },
    "always": {
        "*": (
            "Can you think of a specific example?",
            "When?",
            "What incident are you thinking of?",
            "Really, always?",
        ),
    },
    "alike": {
        "*": (
            "In what way?",
            "What resemblance do you see?",
            "What does that similarity suggest to you?",
            "What other connections do you see?",
            "What do you suppose that resemblance means?",
            "What is the connection, do you suppose?",
            "Could there really be some connection?",
            "How?",
        ),
    },
    "like": {
        "* @be * like *": ("goto alike",),
        "*": ("goto xnone",),
    },
    "different": {
        "*": (
            "How is it different?",
            "What differences do you see?",
            "What does that difference suggest to you?",
            "What other distinctions do you see?",
        ),
    },
    "hello": {
        "*": (
            "How do you do. Please state your problem.",
            "Hello. What seems to be your problem?",
        ),
    },
    "xnone": {
        "*": (
            "I'm not sure I understand you fully.",
            "Please go on.",
            "What does that suggest to you?",
            "Do you feel strongly about discussing such things?",
            "That is interesting. Please continue.",
            "Tell me more about that.",
            "Does talking about this bother you?",
        ),
    },
}

_KEYWORDS: tuple[Keyword, ...] = tuple(
    _kw(word, _RANKS.get(word, 0), rules) for word, rules in _RULES.items()
)

# Words that trigger the keyword named by the value (the words themselves are kept).
_KEYWORD_ALIASES: Mapping[str, str] = {
    "nobody": "everyone",
    "everybody": "everyone",
    "noone": "everyone",
    "maybe": "perhaps",
    "certainly": "yes",
    "machine": "computer",
    "machines": "computer",
    "computers": "computer",
    "same": "alike",
    "identical": "alike",
    "similar": "alike",
    "apologise": "sorry",
    "apologize": "sorry",
    "hi": "hello",
    "hey": "hello",
    "how": "what",
    "when": "what",
    "where": "what",
    "who": "what",
    "dreams": "dream",
}

# Remarks filed away when the keyword "my" is used, brought back when nothing else matches.
_MEMORY = Pattern(
    ("*", "my", "*"),
    (
        "Let's discuss further why your (2).",
        "Earlier you said your (2).",
        "But your (2).",
        "Does that have anything to do with the fact that your (2)?",
    ),
)
_MEMORY_SIZE = 8

_FALLBACK = "xnone"

# --- the machinery ------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9']+")
_CLAUSE = re.compile(r"[.,;:!?]+|\bbut\b")
_CAPTURE = re.compile(r"\((\d+)\)")


def _words(text: str) -> list[str]:
    words: list[str] = []
    for word in _WORD.findall(text.lower()):
        word = word.strip("'")
        if word:
            words.extend(_PRE.get(word, (word,)))
    return words


def _clauses(text: str) -> list[list[str]]:
    clauses = (_words(part) for part in _CLAUSE.split(text.lower()))
    return [clause for clause in clauses if clause]


def match(pattern: Sequence[str], words: Sequence[str]) -> list[list[str]] | None:
    """Match ``words`` against a decomposition pattern.

    Returns the captures (one list of words per ``*`` or ``@group`` element, in order) or
    ``None`` if the pattern does not match. ``*`` matches as few words as possible, so
    ``* i *`` splits at the first "i".
    """

    def walk(p: int, w: int) -> list[list[str]] | None:
        if p == len(pattern):
            return [] if w == len(words) else None
        element = pattern[p]
        if element == "*":
            for end in range(w, len(words) + 1):
                rest = walk(p + 1, end)
                if rest is not None:
                    return [list(words[w:end]), *rest]
            return None
        if w == len(words):
            return None
        if element.startswith("@"):
            if words[w] not in _SYNONYMS[element[1:]]:
                return None
            rest = walk(p + 1, w + 1)
            return None if rest is None else [[words[w]], *rest]
        if words[w] != element:
            return None
        return walk(p + 1, w + 1)

    return walk(0, 0)


def reflect(text: str | Sequence[str]) -> str:
    """Swap first and second person: ``"i am sure of my memory"`` -> ``"you are sure of your memory"``."""
    words = _words(text) if isinstance(text, str) else list(text)
    out: list[str] = []
    for i, word in enumerate(words):
        prev = words[i - 1] if i else ""
        if word == "you":
            following = words[i + 1] if i + 1 < len(words) else ""
            subject = following in _SUBJECT_CONTEXT or (
                following != "" and prev not in _OBJECT_CONTEXT
            )
            out.append("I" if subject else "me")
        elif word in ("am", "are", "was", "were") and prev in ("i", "you"):
            # "i am" -> "you are", "you are" -> "I am", "i was" -> "you were", ...
            if prev == "i":
                out.append({"am": "are", "was": "were"}.get(word, word))
            else:
                out.append({"are": "am", "were": "was"}.get(word, word))
        elif word == "am":
            out.append("are")
        else:
            out.append(_REFLECT.get(word, word))
    return " ".join(out)


def is_goodbye(sentence: str) -> bool:
    """Whether the sentence ends the conversation ("bye", "goodbye", "quit", ...)."""
    return any(word in _QUIT for word in _words(sentence))


def introduction(name: str) -> list[str]:
    """The sentences Eliza introduces herself with."""
    name = " ".join(name.split()) or "stranger"
    return [
        f"Hello {name}, I'm Eliza.",
        "I was written by Joseph Weizenbaum at MIT, in the mid-1960s.",
        "I play a Rogerian psychotherapist: mostly, I turn what you tell me into questions.",
        "I'm not very clever, but people have told me their secrets anyway.",
        f"So, {name}, how are you feeling today?",
    ]


def _finish(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"\s+([?.!,])", r"\1", text)
    return text[:1].upper() + text[1:]


class Eliza:
    """One conversation with Eliza. Not thread-safe; use one per conversation.

    ``seed`` makes the replies reproducible: two instances with the same seed that are told
    the same things reply the same way. ``None`` seeds from the system.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._keywords: dict[str, Keyword] = {k.word: k for k in _KEYWORDS}
        self._next: dict[tuple[str, int], int] = {}
        self._memory: deque[str] = deque(maxlen=_MEMORY_SIZE)
        self._finished = False

    @property
    def finished(self) -> bool:
        """Whether the user has said goodbye."""
        return self._finished

    def reply(self, sentence: str) -> str:
        """Eliza's answer to one thing the user says."""
        if is_goodbye(sentence):
            self._finished = True
            return self._rng.choice(_GOODBYES)
        clauses = _clauses(sentence)
        if not clauses:
            return "Please say something; I am listening."
        for clause in clauses:
            keywords = self._keywords_in(clause)
            if not keywords:
                continue
            if keywords[0].word == "my":
                self._remember(clause)
            for keyword in keywords:
                answer = self._decompose(keyword, clause, set())
                if answer is not None:
                    return answer
        if self._memory:
            return self._memory.popleft()
        answer = self._decompose(self._keywords[_FALLBACK], clauses[0], set())
        assert answer is not None, "the fallback keyword matches everything"
        return answer

    def reply_to_monologue(self, sentences: Iterable[str]) -> str:
        """One answer to many sentences: to the one with the most significant keyword."""
        said = [s for s in sentences if s.strip()]
        if not said:
            return "You haven't said anything at all. Is something on your mind?"

        def significance(index: int) -> tuple[int, int]:
            ranks = [k.rank for c in _clauses(said[index]) for k in self._keywords_in(c)]
            return (max(ranks, default=-1), index)

        best = max(range(len(said)), key=significance)
        count = "one thing" if len(said) == 1 else f"{len(said)} things"
        return f"You told me {count}. {self.reply(said[best])}"

    def introduce(self, name: str) -> list[str]:
        """See ``introduction``."""
        return introduction(name)

    # --- internals ---

    def _keywords_in(self, clause: Sequence[str]) -> list[Keyword]:
        found: dict[str, Keyword] = {}
        for word in clause:
            word = _KEYWORD_ALIASES.get(word, word)
            keyword = self._keywords.get(word)
            if keyword is not None and word != _FALLBACK and word not in found:
                found[word] = keyword
        # sorted() is stable: equal ranks keep their order of appearance.
        return sorted(found.values(), key=lambda k: -k.rank)

    def _template(self, key: tuple[str, int], templates: Sequence[str]) -> str:
        index = self._next.get(key)
        if index is None:
            index = self._rng.randrange(len(templates))
        self._next[key] = (index + 1) % len(templates)
        return templates[index]

    def _decompose(self, keyword: Keyword, clause: Sequence[str], seen: set[str]) -> str | None:
        seen.add(keyword.word)
        for number, pattern in enumerate(keyword.patterns):
            captures = match(pattern.words, clause)
            if captures is None:
                continue
            template = self._template((keyword.word, number), pattern.templates)
            if template.startswith("goto "):
                target = self._keywords[template[5:]]
                if target.word in seen:
                    continue
                return self._decompose(target, clause, seen)
            return _reassemble(template, captures)
        return None

    def _remember(self, clause: Sequence[str]) -> None:
        captures = match(_MEMORY.words, clause)
        if captures is not None and captures[1]:
            template = self._template(("memory", 0), _MEMORY.templates)
            self._memory.append(_reassemble(template, captures))


def _reassemble(template: str, captures: Sequence[Sequence[str]]) -> str:
    def substitute(m: re.Match[str]) -> str:
        index = int(m.group(1)) - 1
        return reflect(captures[index]) if 0 <= index < len(captures) else ""

    return _finish(_CAPTURE.sub(substitute, template))
