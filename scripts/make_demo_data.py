#!/usr/bin/env python3
"""Generate the synthetic extractive-QA demo data set for qa-train.

Each example is a short paragraph about 3 invented people (--people). Every
person gets one sentence that starts with their name and lists the same 3
attribute types (--attributes; drawn per paragraph from: age, city, job, hobby,
pet, favourite colour, favourite food, instrument) in a random order, with
values that differ between the people. The question asks for one attribute of
one person, so it can only be answered by finding that person's sentence: the
attribute type alone leaves a one-in-three guess. The answer is an exact span of
the paragraph (one to a few words).

Full names are "First Family", each part a two-syllable invented word from a
pool (--first-names, --family-names). Validation's full names never occur in
training; half the paragraphs have two people who share a first or a family
name, so the whole name has to be read. Training names recur in many
paragraphs with random attributes, so memorising names does not pay off.

Output (SQuAD / Hugging Face datasets format, one JSON object per line):
    data/train.jsonl       (default 50000 examples)
    data/validation.jsonl  (500 examples)
    {"id": "train-000001", "question": "...", "context": "...",
     "answers": {"text": ["..."], "answer_start": [CHAR_OFFSET]}}

Regenerate (deterministic for a given --seed and shape):
    python3 scripts/make_demo_data.py
Harder variants: --people 3,4 --attributes 4,5 --intros
"""

import argparse
import json
import os
import random

# --------------------------------------------------------------------------
# Attribute vocabularies. Values of different types never share a word, so
# the type of an answer can be read off its words; the hard part is finding
# *whose* value is asked for.
# --------------------------------------------------------------------------
VALUES = {
    "age": [str(a) for a in range(18, 90)],
    "city": ["Paris", "Berlin", "Madrid", "Rome", "Vienna", "Lisbon", "Dublin",
             "Oslo", "Prague", "Warsaw", "Athens", "Cairo", "Tokyo", "Seoul",
             "Lima", "Quito", "Boston", "Denver", "Chicago", "Toronto",
             "Sydney", "Nairobi", "Lagos", "Mumbai", "Delhi", "Bangkok",
             "Hanoi", "Manila", "Helsinki", "Stockholm", "Geneva", "Munich",
             "Milan", "Naples", "Porto", "Seville", "Krakow", "Budapest",
             "New York", "Los Angeles", "Cape Town", "Buenos Aires",
             "Mexico City", "Hong Kong", "San Diego", "Rio de Janeiro"],
    "job": ["baker", "nurse", "teacher", "pilot", "plumber", "dentist",
            "farmer", "lawyer", "chef", "painter", "carpenter", "librarian",
            "journalist", "pharmacist", "architect", "electrician", "tailor",
            "firefighter", "mechanic", "gardener", "surgeon", "florist",
            "butcher", "photographer", "translator", "banker", "sailor",
            "engineer", "bus driver", "taxi driver", "web designer",
            "police officer", "lab technician", "flight attendant",
            "school principal", "software developer"],
    "hobby": ["chess", "hiking", "fishing", "knitting", "cycling", "surfing",
              "gardening", "pottery", "juggling", "archery", "sailing",
              "skiing", "dancing", "yoga", "boxing", "rowing", "birdwatching",
              "origami", "snorkeling", "bowling", "rock climbing",
              "stamp collecting", "board games", "ice skating",
              "wood carving", "kite flying", "scuba diving", "crossword puzzles"],
    "pet": ["cat", "dog", "parrot", "hamster", "rabbit", "turtle", "goldfish",
            "tortoise", "ferret", "lizard", "snake", "canary", "pony",
            "guinea pig", "hedgehog", "iguana", "chinchilla", "gecko",
            "cockatoo", "tarantula"],
    "colour": ["red", "blue", "green", "yellow", "purple", "orange", "pink",
               "brown", "black", "white", "grey", "teal", "violet", "indigo",
               "turquoise", "crimson", "beige", "maroon", "silver", "gold"],
    "food": ["pizza", "sushi", "pasta", "tacos", "curry", "dumplings",
             "pancakes", "lasagna", "paella", "ramen", "burgers", "falafel",
             "risotto", "omelettes", "waffles", "noodles", "goulash",
             "fried rice", "apple pie", "fish soup", "chocolate cake",
             "cheese fondue", "lemon tart", "mushroom stew"],
    "instrument": ["piano", "violin", "cello", "flute", "guitar", "drums",
                   "harp", "trumpet", "clarinet", "saxophone", "banjo",
                   "accordion", "ukulele", "oboe", "trombone", "harmonica",
                   "mandolin", "bagpipes", "double bass", "French horn"],
}
ATTRS = list(VALUES)

# Clause templates (the subject is the person's full name, written before the
# first clause). "{v}" is the value; "{a}" is "a"/"an" for the value.
CLAUSES = {
    "age": ["is {v} years old", "is {v}", "is aged {v}"],
    "city": ["lives in {v}", "is from {v}"],
    "job": ["works as {a} {v}", "is {a} {v}"],
    "hobby": ["enjoys {v}", "loves {v}"],
    "pet": ["has {a} {v}", "owns {a} {v}"],
    "colour": ["likes the colour {v}", "loves the colour {v}"],
    "food": ["adores {v}", "often cooks {v}"],
    "instrument": ["plays the {v}", "practises the {v}"],
}

QUESTIONS = {  # the name is always a separate "First Last" (no possessive)
    "age": ["How old is {n}?", "What is the age of {n}?", "What age is {n}?"],
    "city": ["Where does {n} live?", "In which city does {n} live?",
             "What city is {n} from?"],
    "job": ["What is the job of {n}?", "What does {n} do for a living?",
            "What is the occupation of {n}?"],
    "hobby": ["What is the hobby of {n}?", "What does {n} enjoy doing?",
              "Which hobby does {n} have?"],
    "pet": ["What pet does {n} have?", "Which animal does {n} own?",
            "What kind of pet does {n} keep?"],
    "colour": ["What is the favourite colour of {n}?",
               "Which colour does {n} like best?",
               "What colour does {n} prefer?"],
    "food": ["What is the favourite food of {n}?", "Which dish does {n} love?",
             "What food does {n} like most?"],
    "instrument": ["Which instrument does {n} play?",
                   "What instrument does {n} play?",
                   "What musical instrument does {n} practise?"],
}

INTROS = ["", "", "", "", "", "", "", "", "Some neighbours introduce themselves.",
          "A few friends meet at a cafe.", "Here are some club members.",
          "Several colleagues share a table at lunch.",
          "The new tenants are listed below."]

# Name syllables: first and last names are 2 syllables each, capitalised.
ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v",
          "z", "br", "dr", "st", "sh", "ch", "th"]
VOWELS = ["a", "e", "i", "o", "u"]
CODAS = ["", "", "", "n", "r", "l", "s", "m"]


def article(word):
    return "an" if word[0].lower() in "aeiou" else "a"


def make_name_pool(rng, n_syll, count, banned):
    """`count` distinct capitalised syllable names not equal to any banned word."""
    names = set()
    while len(names) < count:
        parts = []
        for i in range(n_syll if isinstance(n_syll, int) else rng.choice(n_syll)):
            parts.append(rng.choice(ONSETS) + rng.choice(VOWELS)
                         + (rng.choice(CODAS) if i == 0 else rng.choice(CODAS[:6])))
        name = "".join(parts).capitalize()
        if name.lower() not in banned and 4 <= len(name) <= 10:
            names.add(name)
    names = sorted(names)
    rng.shuffle(names)
    return names


class NamePool:
    """(first, family) pairs of one split, indexed by either part."""

    def __init__(self, pool):
        self.pool = pool
        self.by_first, self.by_family = {}, {}
        for f, l in pool:
            self.by_first.setdefault(f, []).append((f, l))
            self.by_family.setdefault(l, []).append((f, l))


def pick_people(rng, names, n_people, namesake_rate):
    """n distinct (first, family) names; a share (namesake_rate) of the paragraphs have a relative
    or a namesake, so that neither the first nor the family name alone always tells the people
    apart; with rate 0 no two people share a first or a family name."""
    people = [rng.choice(names.pool)]
    if rng.random() < namesake_rate:
        f, l = people[0]
        same = names.by_first[f] if rng.random() < 0.5 else names.by_family[l]
        other = rng.choice(same)
        if other != people[0]:
            people.append(other)
    while len(people) < n_people:
        c = rng.choice(names.pool)
        # Rate 0 rules out shared first or family names altogether (otherwise chance may pair them).
        if c not in people and (namesake_rate > 0 or all(c[0] != p[0] and c[1] != p[1] for p in people)):
            people.append(c)
    rng.shuffle(people)
    return [f + " " + l for f, l in people]


def list_separator(i, n):
    """What goes before item i of n in "x, y and z"."""
    return "" if i == 0 else " and " if i == n - 1 else ", "


def add_clause(rng, sentence, attr, value, subject=""):
    """Appends "[subject]<a clause stating value>" to sentence; returns it and the value's offset."""
    pre, post = rng.choice(CLAUSES[attr]).split("{v}")
    pre = subject + pre.replace("{a}", article(value))
    return sentence + pre + value + post, len(sentence) + len(pre)


def make_example(rng, names, ex_id, shape):
    n_people = rng.choice(shape.people)
    attrs = rng.sample(ATTRS, rng.choice(shape.attributes))
    people = pick_people(rng, names, n_people, shape.namesake_rate)
    values = {a: rng.sample(VALUES[a], n_people) for a in attrs}

    target_p = rng.randrange(n_people)
    target_a = rng.choice(attrs)

    context = rng.choice(INTROS) if shape.intros else ""
    answer_start = None
    if shape.layout == "by-attribute":
        # One sentence per attribute naming every person, in a fresh order each time, each value
        # right after its owner's name: "A has a cat, B owns a dog and C has a newt."
        for a in attrs:
            order = list(range(n_people))
            rng.shuffle(order)
            sentence = " " if context else ""
            for i, p in enumerate(order):
                sentence += list_separator(i, len(order))
                sentence, at = add_clause(rng, sentence, a, values[a][p], people[p] + " ")
                if p == target_p and a == target_a:
                    answer_start = len(context) + at
            context += sentence + "."
    else:
        for p, name in enumerate(people):
            order = attrs[:]
            rng.shuffle(order)
            sentence = (" " if context else "") + name + " "
            for i, a in enumerate(order):
                if i > 0 and shape.sentence_per_attribute:
                    sentence += ". " + name + " "
                else:
                    sentence += list_separator(i, len(order))
                sentence, at = add_clause(rng, sentence, a, values[a][p])
                if p == target_p and a == target_a:
                    answer_start = len(context) + at
            context += sentence + "."

    answer = values[target_a][target_p]
    question = rng.choice(QUESTIONS[target_a]).format(n=people[target_p])
    assert context[answer_start:answer_start + len(answer)] == answer
    return {"id": ex_id, "question": question, "context": context,
            "answers": {"text": [answer], "answer_start": [answer_start]}}


def int_choices(text):
    """"3" -> [3]; "3,3,4" -> [3, 3, 4] (a weighted choice)."""
    return [int(x) for x in text.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--train", type=int, default=50000)
    ap.add_argument("--validation", type=int, default=500)
    ap.add_argument("--people", type=int_choices, default=[3],
                    help="people per paragraph, e.g. 3 or 3,3,4 (>= 3)")
    ap.add_argument("--attributes", type=int_choices, default=[3],
                    help="attributes per person, e.g. 3 or 4,5 (>= 2)")
    ap.add_argument("--first-names", type=int, default=150, help="first-name pool size")
    ap.add_argument("--family-names", type=int, default=150, help="family-name pool size")
    ap.add_argument("--namesake-rate", type=float, default=0.5,
                    help="share of paragraphs where two people share a first or family name "
                         "(0: no shared names at all)")
    ap.add_argument("--layout", choices=["by-person", "by-attribute"], default="by-person",
                    help="by-person: one sentence per person listing their attributes in a random "
                         "order; by-attribute: one sentence per attribute listing every person's value, "
                         "each value right after its owner's name")
    ap.add_argument("--sentence-per-attribute", action="store_true",
                    help="one sentence per attribute, each starting with the full name")
    ap.add_argument("--intros", action="store_true", help="sometimes open with a scene sentence")
    ap.add_argument("--out-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    args = ap.parse_args()
    if args.train < 4000:
        ap.error("--train must be at least 4000")
    if min(args.people) < 3 or min(args.attributes) < 2:
        ap.error("a paragraph needs >= 3 people with >= 2 attributes each")

    if args.sentence_per_attribute and args.layout != "by-person":
        ap.error("--sentence-per-attribute splits a person's sentence, so it needs --layout by-person")
    if args.first_names * args.family_names < 2 * 300:
        ap.error("--first-names x --family-names must be at least 600 full names")

    rng = random.Random(args.seed)
    banned = set()
    for vals in VALUES.values():
        for v in vals:
            banned.update(w.lower() for w in v.split())
    # Full names are First Family from two pools of single-word syllable names. Validation's full
    # names never occur in training. Every training name recurs in many paragraphs with random
    # attributes, so memorising name -> value pairs cannot pay off (with names that occur once or
    # twice, a small model memorised the training set within a few epochs instead of learning to
    # read); and a trained tokenizer keeps each name one piece, in validation as in training.
    firsts = make_name_pool(rng, 2, args.first_names, banned)
    families = make_name_pool(rng, 2, args.family_names, banned | {f.lower() for f in firsts})
    combos = [(f, l) for f in firsts for l in families]
    rng.shuffle(combos)
    n_va = max(300, len(combos) // 40)
    splits = {"train": (NamePool(combos[n_va:]), args.train),
              "validation": (NamePool(combos[:n_va]), args.validation)}
    os.makedirs(args.out_dir, exist_ok=True)
    train_names = set()
    for split, (names, n) in splits.items():
        path = os.path.join(args.out_dir, split + ".jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for i in range(n):
                ex = make_example(rng, names, "%s-%06d" % (split, i + 1), args)
                f.write(json.dumps(ex, ensure_ascii=False) + "\n")
        if split == "train":
            train_names = {f + " " + l for f, l in names.pool}
        else:  # no validation full name is a training name
            assert not train_names & {f + " " + l for f, l in names.pool}
        print("wrote %d examples to %s" % (n, os.path.normpath(path)))


if __name__ == "__main__":
    main()
