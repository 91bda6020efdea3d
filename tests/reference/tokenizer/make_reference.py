"""Builds tokenizers and the ids the reference libraries give, for tokenizer_reference_test.

Usage: make_reference.py OUTDIR [--falcon DIR]

Writes OUTDIR/corpus.bin (the documents), and for every tokenizer OUTDIR/NAME/ with its
tokenizer.json (or tokenizer.model) and expected.bin: per document the ids without and with
special tokens, the reference's decode of the former, and whether that decode equals the text.
The tokenizers are trained here, at test time, with the `tokenizers` and `sentencepiece`
packages; the expected values come only from those packages, never from our code.
OUTDIR/manifest.json lists them.
"""
import argparse
import json
import os
import shutil
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

from corpus import make_corpus, write_docs  # noqa: E402

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402
from tokenizers import processors, trainers  # noqa: E402

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level_bpe(texts, add_prefix_space, vocab_size=3000):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def gpt2_prefix(texts):
    return byte_level_bpe(texts, add_prefix_space=True)


def gpt2_added_tokens(texts):
    """No prefix space, an NFC normalizer, and added tokens with every matching option."""
    tok = byte_level_bpe(texts, add_prefix_space=False)
    tok.normalizer = normalizers.NFC()
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True),
                            AddedToken("<sep>", rstrip=True, special=True)])
    tok.add_tokens([AddedToken("[word]", single_word=True, special=False),
                    AddedToken("Hello World", normalized=True, special=False),
                    AddedToken("café", normalized=True, special=False)])
    eot = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A <|endoftext|>",
                                                       special_tokens=[("<|endoftext|>", eot)])
    return tok


def llama3_style(texts):
    """Split regex + ByteLevel without its own regex, ignore_merges, BOS template."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])])
    return tok


def with_byte_fallback(tok):
    """Adds the 256 <0xXX> tokens to the model's vocabulary and turns byte_fallback on."""
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    next_id = max(max(vocab.values()), max((a["id"] for a in j["added_tokens"]), default=0)) + 1
    for b in range(256):
        name = f"<0x{b:02X}>"
        if name not in vocab:
            vocab[name] = next_id
            next_id += 1
    j["model"]["byte_fallback"] = True
    return j


def metaspace_fallback(texts):
    """Metaspace (prepend_scheme first), BPE with byte_fallback, <unk> with fuse_unk, BOS template."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=2500, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120,
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return Tokenizer.from_str(json.dumps(with_byte_fallback(tok)))


def llama2_style(texts):
    """The Llama-2 conversion of transformers: Prepend + Replace normalizers, no pre-tokenizer,
    Replace/ByteFallback/Fuse/Strip decoders (vocabulary trained as metaspace_fallback)."""
    j = json.loads(metaspace_fallback(texts).to_str())
    j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "▁"}]}
    j["pre_tokenizer"] = None
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return Tokenizer.from_str(json.dumps(j))


def kitchen_sink(texts):
    """Normalizers NFKC/Lowercase/Strip/Replace(regex); Whitespace-style splits with every Split
    behaviour, Punctuation, Digits; subword prefix and end-of-word suffix; Bert post-processor."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip(),
                                           normalizers.Replace(Regex(r"\d{5,}"), "#")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="merged_with_next"),
        pre_tokenizers.Split("th", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[xyz]+"), behavior="removed", invert=True),
    ])
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]", "[CLS]", "[SEP]"], limit_alphabet=300,
                                  continuing_subword_prefix="##", end_of_word_suffix="</w>", show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    return tok


def whitespace_nfkd(texts):
    """Whitespace / CharDelimiterSplit pre-tokenizers, NFKD, Fuse/Strip decoders. (Strip with
    right > 0 panics in tokenizers 0.23 on an empty decode, so only left is exercised.)"""
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Replace("\t", " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.CharDelimiterSplit("\n"), pre_tokenizers.Whitespace()])
    tok.decoder = decoders.Sequence([decoders.Fuse(), decoders.Strip(content="x", left=1, right=0)])
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]"], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def subword_prefix(texts):
    """continuing_subword_prefix alone (BERT-style "##" pieces): a merge drops the prefix of its
    second half ("##b" + "##c" = "##bc"); no decoder (tokens joined with spaces)."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["[UNK]"], continuing_subword_prefix="##", limit_alphabet=300,
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def split_word_class(texts):
    """A custom Split regex on `\\w` (Oniguruma's word class: marks and joiners included), after
    a whitespace-collapsing Replace; end-of-word suffix."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Replace(Regex(r"\s+"), " ")
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"\d+|[^\w\s]+"), behavior="isolated"),
                                                 pre_tokenizers.WhitespaceSplit()])
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]"], end_of_word_suffix="</w>",
                                  limit_alphabet=300, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


HF_BUILDERS = {
    "gpt2_prefix": gpt2_prefix,
    "gpt2_added_tokens": gpt2_added_tokens,
    "llama3_style": llama3_style,
    "metaspace_fallback": metaspace_fallback,
    "llama2_style": llama2_style,
    "kitchen_sink": kitchen_sink,
    "whitespace_nfkd": whitespace_nfkd,
    "subword_prefix": subword_prefix,
    "split_word_class": split_word_class,
}


def write_expected(path, texts, encode, encode_special, decode):
    with open(path, "wb") as f:
        for t in texts:
            ids = encode(t)
            ids_special = encode_special(t)
            decoded = decode(ids).encode("utf-8", "surrogatepass")
            f.write(struct.pack("<I", len(ids)) + struct.pack(f"<{len(ids)}i", *ids))
            f.write(struct.pack("<I", len(ids_special)) + struct.pack(f"<{len(ids_special)}i", *ids_special))
            f.write(struct.pack("<I", len(decoded)) + decoded)
            f.write(struct.pack("<B", 1 if decoded == t.encode("utf-8", "surrogatepass") else 0))


def hf_expected(tok, outdir, name, texts):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    # Encode in one batch (Rust threads) for speed; batches give the same ids as single calls.
    plain = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    special = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
    decoded = tok.decode_batch(plain, skip_special_tokens=False)
    it_plain, it_special, it_dec = iter(plain), iter(special), iter(decoded)
    write_expected(os.path.join(d, "expected.bin"), texts, lambda t: next(it_plain), lambda t: next(it_special),
                   lambda ids: next(it_dec))


def sentencepiece_expected(outdir, name, texts, train_texts, model_type):
    import sentencepiece as spm
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    train_file = os.path.join(d, "train.txt")
    with open(train_file, "w", encoding="utf-8") as f:
        for t in train_texts:
            for line in t.splitlines():
                if line.strip():
                    f.write(line + "\n")
    spm.SentencePieceTrainer.train(input=train_file, model_prefix=os.path.join(d, "tokenizer"), vocab_size=3000,
                                   model_type=model_type, byte_fallback=True, character_coverage=0.98,
                                   input_sentence_size=30000, shuffle_input_sentence=True, num_threads=2,
                                   minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    bos = sp.bos_id()
    os.remove(train_file)
    write_expected(os.path.join(d, "expected.bin"), texts, lambda t: sp.encode(t),
                   lambda t: [bos] + sp.encode(t), lambda ids: sp.decode(ids))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--falcon", help="folder with Falcon's tokenizer.json (optional)")
    ap.add_argument("--only", nargs="*", help="build only these tokenizers")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    docs = make_corpus()
    write_docs(os.path.join(args.outdir, "corpus.bin"), docs)
    # The reference libraries take str: invalid UTF-8 arrives as U+FFFD, as in our encoder.
    texts = [d.decode("utf-8", "replace") for d in docs]
    train = texts[::2]  # train on half the documents so that the other half holds unseen words
    wanted = set(args.only) if args.only else None
    manifest = []
    if args.falcon and (not wanted or "falcon" in wanted):
        d = os.path.join(args.outdir, "falcon")
        os.makedirs(d, exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            if os.path.exists(os.path.join(args.falcon, f)):
                shutil.copy(os.path.join(args.falcon, f), d)
        hf_expected(Tokenizer.from_file(os.path.join(d, "tokenizer.json")), args.outdir, "falcon", texts)
        manifest.append({"name": "falcon", "file": "falcon/tokenizer.json"})
    for name, build in HF_BUILDERS.items():
        if wanted and name not in wanted:
            continue
        t0 = time.time()
        tok = build(train)
        t1 = time.time()
        hf_expected(tok, args.outdir, name, texts)
        print(f"{name}: trained in {t1 - t0:.1f}s, reference ids in {time.time() - t1:.1f}s", file=sys.stderr)
        manifest.append({"name": name, "file": f"{name}/tokenizer.json"})
    for name, model_type in (("sentencepiece_unigram", "unigram"), ("sentencepiece_bpe", "bpe")):
        if wanted and name not in wanted:
            continue
        sentencepiece_expected(args.outdir, name, texts, train, model_type)
        manifest.append({"name": name, "file": f"{name}/tokenizer.model"})
    with open(os.path.join(args.outdir, "manifest.json"), "w") as f:
        json.dump({"documents": len(docs), "bytes": sum(map(len, docs)), "tokenizers": manifest}, f, indent=1)


if __name__ == "__main__":
    main()
