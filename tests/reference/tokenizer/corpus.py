"""Deterministic mixed-script test corpus for tokenizer parity (>= 1 MB).

Each document mixes English prose, other scripts (CJK, Cyrillic, Arabic, Devanagari, Thai,
Greek), emoji with ZWJ sequences, skin tones and flags, source code, long digit runs,
whitespace runs, tabs, CRLF, special-token strings inside text, and unusual or invalid
Unicode. Documents are bytes: some hold invalid UTF-8 on purpose (the reference libraries see
them after Python's errors="replace" decoding, as our encoder does).

The random documents use only characters assigned by Unicode 13. A few fixed documents then
hold characters whose class depends on the Unicode version (letters and digits new in 15.1 and
16.0, which tokenizers knows and the system ICU may not; punctuation added after 8.0, where
tokenizers' punctuation table stops), each beside letters, digits, spaces and punctuation.
"""
import random
import struct

WORDS = ("the of and to in is was that for it with as his on be at by had are but from or have an they which "
         "one you were all her she there would their we him been has when who will no more if out so said what up "
         "its about than into them can only other time new some could these two may first then do any like my now "
         "over such our man me even most made after also did many before must through back years where much your "
         "way well down should because each just those people how too little state good very make world still own "
         "see men work long get here between both life being under never day same another know while last might us "
         "great old year off come since against go came right used take three Hello World I'm you're it's don't "
         "we've they'll she'd O'Neil rock'n'roll e-mail state-of-the-art naïve café résumé Zürich Führer").split()

SCRIPTS = [
    (0x4E00, 0x9FA5),   # CJK unified ideographs
    (0x3041, 0x3096),   # Hiragana
    (0x30A1, 0x30FA),   # Katakana
    (0xAC00, 0xD7A3),   # Hangul syllables
    (0x0410, 0x044F),   # Cyrillic
    (0x0621, 0x064A),   # Arabic letters
    (0x0905, 0x0939),   # Devanagari letters
    (0x0E01, 0x0E2E),   # Thai
    (0x0391, 0x03C9),   # Greek
]
MARKS = {0x0621: (0x064B, 0x0652), 0x0905: (0x093E, 0x094D), 0x0E01: (0x0E31, 0x0E3A)}

EMOJI = ["😀", "😂", "🦙", "🚀", "✅", "❤️", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸", "🇯🇵", "😶‍🌫️", "🧑🏿‍💻", "☕", "⭐"]

CODE = [
    "def f(x):\n    return x ** 2 + 3*x - 1  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "if (a && b || !c) { printf(\"%d\\n\", x); }\r\n",
    "const re = /^[a-z0-9_-]{3,16}$/; // username\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n",
    "<div class=\"main\">&nbsp;<a href='x.html'>link</a></div>\n",
    "    x = {'key': [1, 2, 3], \"other\": None}\n",
    "$ git commit -m 'fix: off-by-one' && echo ok\n",
]

SPECIAL_STRINGS = ["<|endoftext|>", ">>TITLE<<", ">>ANSWER<<", "<s>", "</s>", "<unk>", "<mask>", "<sep>",
                   "[word]", "[CLS]", "<|begin_of_text|>", "<|endof", "<s >", "Hello World"]

UNUSUAL = ["\u00a0", "\u0085", "\u2028", "\u2029", "\u200b", "\u200c", "\u200d", "\ufeff", "\ue000", "\U0010fffd",
           "\ufffd", "\u0378", "e\u0301", "\u00b2\u00b3\u00b9\u00bc\u00bd\u00be", "\uff21\uff22\uff23", "\ufb01",
           "\u0130", "\u00df", "\u03a3", "\u1e9e", "\u2163", "\u0660\u0661\u0662", "\u3000", "\u00ad", "\x00",
           "\x01\x02\x03\x04\x05\x0b\x1f\x7f", "\u2126", "\u212b", "\u1100\u1161\u11a8"]

VERSION_SENSITIVE = [
    # Letters new in Unicode 15.1/16.0: CJK Ext-I, Todhri, Garay, Tulu-Tigalari, Egyptian ext.
    "\U0002EBF0\U0002EE5D\U000105C7\U00010D4A\U00011390\U00013460\U00001C89\U0000A7CB",
    # Numbers new in 16.0: Garay, Myanmar Pao, Sunuwar, Outlined digits, Ol Onal.
    "\U00010D40\U000116D0\U00011BF0\U0001CCF0\U0001E5F1",
    # Punctuation added after Unicode 8.0 (U+061D, U+2E43, U+2E52, U+1E95E) and the two that
    # were punctuation in 8.0 but are not now (U+166D, U+111C9).
    "\u061d\u2e43\u2e52\U0001e95e\u166d\U000111c9",
]

INVALID = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98",
           b"\x80\x80", b"\xfe\xfe"]


def script_text(r):
    lo, hi = r.choice(SCRIPTS)
    marks = MARKS.get(lo)
    words = []
    for _ in range(r.randint(1, 8)):
        w = ""
        for _ in range(r.randint(1, 7)):
            w += chr(r.randint(lo, hi))
            if marks and r.random() < 0.3:
                w += chr(r.randint(*marks))
        words.append(w)
    sep = "" if lo in (0x4E00, 0x3041, 0x30A1, 0x0E01) and r.random() < 0.5 else " "
    return sep.join(words)


def english(r):
    n = r.randint(3, 25)
    s = " ".join(r.choice(WORDS) for _ in range(n))
    s = s[0].upper() + s[1:]
    return s + r.choice([".", "!", "?", ",", ";", ":", "...", " —", ""])


def digits(r):
    kind = r.random()
    if kind < 0.4:
        return "".join(r.choice("0123456789") for _ in range(r.randint(1, 40)))
    if kind < 0.7:
        return f"{r.randint(0, 10**9):,}.{r.randint(0, 99):02d}"
    return r.choice(["3.14159", "1e-10", "0x1F", "2024-01-31", "12:30:59", "+49 30 1234567", "v2.0.1", "100%"])


def whitespace(r):
    return r.choice([" " * r.randint(2, 12), "\t" * r.randint(1, 4), "\r\n", "\n" * r.randint(2, 5), " \t \n",
                     "\n    ", "\r\n\r\n", " \u00a0 ", "\u3000"])


def segment(r):
    k = r.random()
    if k < 0.35:
        return english(r)
    if k < 0.55:
        return script_text(r)
    if k < 0.63:
        return " ".join(r.choice(EMOJI) for _ in range(r.randint(1, 4)))
    if k < 0.71:
        return r.choice(CODE)
    if k < 0.79:
        return digits(r)
    if k < 0.87:
        return whitespace(r)
    if k < 0.93:
        return r.choice(SPECIAL_STRINGS)
    return r.choice(UNUSUAL)


def make_corpus(min_bytes=1_100_000, seed=20240531):
    """Returns a list of documents (bytes); about 3% hold invalid UTF-8."""
    r = random.Random(seed)
    docs = []
    total = 0
    # A few edge cases first: empty, lone space, only whitespace, only a special token.
    for d in ["", " ", "   ", "\n", "\t\t", "<|endoftext|>", " <|endoftext|> ", "a", "Hello World"]:
        docs.append(d.encode())
        total += len(docs[-1])
    for chars in VERSION_SENSITIVE:
        docs.append(" ".join(f"a{c} {c}1 !{c}! {c}{c} '{c} 12{c}34" for c in chars).encode())
        total += len(docs[-1])
    while total < min_bytes:
        parts = []
        for _ in range(r.randint(1, 40)):
            parts.append(segment(r))
            parts.append(r.choice([" ", " ", " ", "", "\n", ", ", whitespace(r)]))
        doc = "".join(parts).encode("utf-8", "surrogatepass")
        if r.random() < 0.03:
            pos = r.randint(0, len(doc))
            doc = doc[:pos] + r.choice(INVALID) + doc[pos:]
        docs.append(doc)
        total += len(doc)
    return docs


def make_prose_corpus(min_bytes=4_000_000, seed=11):
    """English prose with some code, numbers and whitespace: closer to fine-tuning data than
    make_corpus(), for benchmarks."""
    r = random.Random(seed)
    docs, total = [], 0
    while total < min_bytes:
        parts = []
        for _ in range(r.randint(5, 60)):
            k = r.random()
            parts.append(english(r) if k < 0.8 else r.choice(CODE) if k < 0.9 else digits(r))
            parts.append(r.choice([" ", " ", " ", "\n", "\n\n"]))
        doc = "".join(parts).encode()
        docs.append(doc)
        total += len(doc)
    return docs


def write_docs(path, docs):
    with open(path, "wb") as f:
        for d in docs:
            f.write(struct.pack("<I", len(d)))
            f.write(d)
