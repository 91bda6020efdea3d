"""Oracle for `autotrain generate`: what transformers' generate() (and PEFT on top) produces.

  generate_reference.py OUT_DIR

Writes:
  OUT_DIR/model/        a tiny random Falcon (falcon-7b layout) with a byte-level BPE tokenizer
                        trained here as Falcon's is built (special tokens first, <|endoftext|> = 11;
                        multi-byte characters split across tokens, so the text of a random
                        continuation holds partial characters)
  OUT_DIR/adapter/      a PEFT LoRA adapter for it (all linear layers, random non-zero B)
  OUT_DIR/model_eos/    the same model with a generation_config.json whose eos_token_id is a
                        token the greedy continuation reaches (so generation stops there)
  OUT_DIR/warp.safetensors  logits and the scores transformers' warpers make of them
  OUT_DIR/expected.json     the cases (prompt, options) with transformers' new ids and text, and
                            what `autotrain chat` must print for a two-message conversation
"""
import json
import os
import random
import shutil
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, FalconConfig, FalconForCausalLM
from transformers.generation.logits_process import (EpsilonLogitsWarper, EtaLogitsWarper, LogitsProcessorList,
                                                    MinPLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper, TypicalLogitsWarper)

PROMPTS = ["### Human: What is 12 plus 7?### Assistant:", "Hello, how are you today?"]
NEW_TOKENS = 24


def build_model(vocab):
    torch.manual_seed(3)
    cfg = FalconConfig(vocab_size=vocab, hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                       multi_query=True, parallel_attn=True, bias=False, alibi=False,
                       new_decoder_architecture=False, max_position_embeddings=256,
                       bos_token_id=11, eos_token_id=11)
    model = FalconForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or "ln_f" in name:
                continue
            # Weights large enough that greedy decoding has clear winners and sampling spreads.
            p.copy_(0.3 * torch.randn_like(p))
    return model


def check_no_near_tie(model, seq, prompt_len, name):
    """Greedy decoding must not hinge on a last-bit difference between two implementations."""
    with torch.no_grad():
        logits = model(seq[:, :-1]).logits[0, prompt_len - 1:].float()
    top2 = logits.topk(2, dim=-1).values
    gap = (top2[:, 0] - top2[:, 1]).min().item()
    assert gap > 1e-3, f"{name}: greedy decoding has a near tie ({gap}); choose another seed"


def new_ids(sequences, prompt_len):
    return sequences[0, prompt_len:].tolist()


def make_tokenizer(model_dir):
    specials = [">>TITLE<<", ">>ABSTRACT<<", ">>INTRODUCTION<<", ">>SUMMARY<<", ">>COMMENT<<", ">>ANSWER<<",
                ">>QUESTION<<", ">>DOMAIN<<", ">>PREFIX<<", ">>SUFFIX<<", ">>MIDDLE<<", "<|endoftext|>"]
    words = ["human", "assistant", "what", "is", "plus", "minus", "reverse", "the", "word", "hello", "how", "are",
             "you", "today", "café", "naïve", "日本語", "中文", "emoji 🙂", "größe", "привет", "###", "?", ":"]
    rng = random.Random(1)
    corpus = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    assert tok.token_to_id("<|endoftext|>") == 11
    tok.save(os.path.join(model_dir, "tokenizer.json"))


def main(out):
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir)
    make_tokenizer(model_dir)
    # As Falcon-7B's tokenizer_config.json: eos <|endoftext|>, no BOS added.
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
                   "add_prefix_space": False, "model_max_length": 2048}, f)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = build_model(len(tok))
    model.save_pretrained(model_dir)
    # save_pretrained writes the generation_config.json transformers derives (eos 11); keep it.

    torch.manual_seed(5)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                      target_modules=["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"])
    peft_model = get_peft_model(FalconForCausalLM.from_pretrained(model_dir), lora)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.2 * torch.randn_like(p))
    peft_model.save_pretrained(os.path.join(out, "adapter"))

    base = FalconForCausalLM.from_pretrained(model_dir).eval()
    adapted = PeftModel.from_pretrained(FalconForCausalLM.from_pretrained(model_dir),
                                        os.path.join(out, "adapter")).eval()
    cases = []

    def record(name, model, prompt, adapter, sampling=None, model_folder=model_dir, scores_decide=False, **extra):
        ids = tok(prompt, return_tensors="pt").input_ids
        kwargs = dict(max_new_tokens=NEW_TOKENS, attention_mask=torch.ones_like(ids), pad_token_id=11)
        if sampling:
            torch.manual_seed(sampling["seed"])
            kwargs.update(do_sample=True, temperature=sampling["temperature"], top_k=sampling["top_k"],
                          top_p=sampling["top_p"])
        else:
            kwargs.update(do_sample=False)
        kwargs.update(extra)
        with torch.no_grad():
            out = model.generate(ids, output_scores=True, return_dict_in_generate=True, **kwargs)
        seq = out.sequences
        beams = extra.get("num_beams", model.generation_config.num_beams or 1) > 1
        if beams:
            pass  # each step ranks summed log-probabilities; no single score to check for ties
        elif not sampling:
            if extra or scores_decide:
                # The scores after the logits processors decide: no near tie among those either.
                gaps = [(s[0].topk(2).values[0] - s[0].topk(2).values[1]).item() for s in out.scores]
                assert min(gaps) > 1e-3, f"{name}: greedy decoding has a near tie ({min(gaps)})"
            else:
                check_no_near_tie(model, seq, ids.shape[1], name)
        gen = new_ids(seq, ids.shape[1])
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [] if eos is None else [eos]
        case = dict(name=name, model=model_folder, adapter=adapter, prompt=prompt, sampling=sampling,
                    prompt_ids=ids[0].tolist(), ids=gen, text=tok.decode(gen, skip_special_tokens=True),
                    ended_by_eos=bool(gen) and gen[-1] in eos)
        if extra:
            case["processors"] = extra
        cases.append(case)
        return gen

    for i, prompt in enumerate(PROMPTS):
        record(f"greedy_base_{i}", base, prompt, None)
        record(f"greedy_adapter_{i}", adapted, prompt, "adapter")
    record("sample_adapter", adapted, PROMPTS[0], "adapter",
           sampling=dict(seed=7, temperature=0.8, top_k=40, top_p=0.9))
    record("sample_base_defaults", base, PROMPTS[1], None,
           sampling=dict(seed=11, temperature=1.5, top_k=50, top_p=1.0))

    # A model folder whose generation_config.json ends sequences at a token the greedy
    # continuation of PROMPTS[1] produces (its first occurrence, after a few tokens).
    greedy = next(c for c in cases if c["name"] == "greedy_base_1")["ids"]
    stop_at = next(i for i in range(3, len(greedy)) if greedy[i] not in greedy[:i])
    eos_dir = os.path.join(out, "model_eos")
    shutil.copytree(model_dir, eos_dir)
    with open(os.path.join(eos_dir, "generation_config.json")) as f:
        gc = json.load(f)
    gc["eos_token_id"] = [greedy[stop_at], 11]
    with open(os.path.join(eos_dir, "generation_config.json"), "w") as f:
        json.dump(gc, f, indent=2)
    eos_model = FalconForCausalLM.from_pretrained(eos_dir).eval()
    got = record("greedy_eos", eos_model, PROMPTS[1], None, model_folder="model_eos")
    assert got == greedy[:stop_at + 1], (got, greedy[:stop_at + 1])
    # transformers' logits processors: min_new_tokens carries the text past that eos; penalties
    # change greedy and sampled text.
    got = record("greedy_min_new_tokens", eos_model, PROMPTS[1], None, model_folder="model_eos",
                 min_new_tokens=stop_at + 3)
    assert len(got) > stop_at + 1, got
    got = record("greedy_penalties", base, PROMPTS[1], None, repetition_penalty=1.3, no_repeat_ngram_size=2)
    assert got != greedy, "the penalties changed nothing: the case tests nothing"
    record("sample_repetition_penalty", adapted, PROMPTS[0], "adapter",
           sampling=dict(seed=7, temperature=0.8, top_k=40, top_p=0.9), repetition_penalty=0.7)
    # generation_config.json decides when the folder has one: here without eos_token_id (and
    # with a null do_sample, an unset one) while config.json names a token the greedy continuation
    # produces, transformers does not stop there.
    noeos_dir = os.path.join(out, "model_noeos")
    shutil.copytree(model_dir, noeos_dir)
    with open(os.path.join(noeos_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg["eos_token_id"] = greedy[stop_at]
    with open(os.path.join(noeos_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(noeos_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 11, "do_sample": None}, f)
    noeos_model = FalconForCausalLM.from_pretrained(noeos_dir).eval()
    got = record("greedy_config_eos_not_used", noeos_model, PROMPTS[1], None, model_folder="model_noeos")
    assert len(got) == NEW_TOKENS and greedy[stop_at] in got, got

    # A model whose vocabulary is padded past the tokenizer's (falcon-rw-1b: 50304 rows for 50257
    # tokens): sampling reaches ids without text, which decode leaves out.
    pad_dir = os.path.join(out, "model_pad")
    os.makedirs(pad_dir)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(model_dir, f), pad_dir)
    padded = build_model(len(tok) + 200)
    padded.save_pretrained(pad_dir)
    got = record("sample_padded_vocab", padded, PROMPTS[0], None, model_folder=pad_dir,
                 sampling=dict(seed=3, temperature=2.0, top_k=0, top_p=1.0))
    assert any(i >= len(tok) for i in got), got

    def folder_with(name, settings, source=model_dir):
        """A copy of a model folder whose generation_config.json adds `settings`."""
        folder = os.path.join(out, name)
        shutil.copytree(source, folder)
        with open(os.path.join(folder, "generation_config.json")) as f:
            gc = json.load(f)
        gc.update(settings)
        with open(os.path.join(folder, "generation_config.json"), "w") as f:
            json.dump(gc, f, indent=2)
        return folder, FalconForCausalLM.from_pretrained(folder).eval()

    # The rarer logits processors, from generation_config.json (as a fine-tuned model ships them):
    # each one bans, boosts or forces tokens of the plain greedy continuation, so it matters.
    g = greedy
    prompt_ids = tok(PROMPTS[1]).input_ids
    folder, m = folder_with("model_bias", {
        "sequence_bias": [[[g[1]], -4.0], [[g[2], g[3]], -30.0], [[prompt_ids[-1], g[0]], 2.5]],
        "bad_words_ids": [[g[4]], [g[5], g[6]], [11]],
        "encoder_repetition_penalty": 1.4,
        "renormalize_logits": True})
    got = record("greedy_sequence_bias", m, PROMPTS[1], None, model_folder=folder, scores_decide=True)
    assert got != greedy, "the processors changed nothing"
    folder, m = folder_with("model_suppress", {
        "suppress_tokens": [g[0], g[2]], "begin_suppress_tokens": [g[1]], "forced_eos_token_id": 11})
    got = record("greedy_suppress_forced_eos", m, PROMPTS[1], None, model_folder=folder, scores_decide=True)
    assert got[-1] == 11 and len(got) == NEW_TOKENS and g[0] not in got, got
    one_token = "hello"
    assert len(tok(one_token).input_ids) == 1
    folder, m = folder_with("model_forced_bos", {"forced_bos_token_id": g[3], "begin_suppress_tokens": [g[0]]})
    got = record("greedy_forced_bos", m, one_token, None, model_folder=folder, scores_decide=True)
    assert got[0] == g[3], got
    # The rarer warpers: min_p and typical_p from the command line, epsilon and eta from the file.
    record("sample_min_p", adapted, PROMPTS[0], "adapter",
           sampling=dict(seed=9, temperature=1.3, top_k=0, top_p=1.0), min_p=0.08)
    record("sample_typical_p", base, PROMPTS[1], None,
           sampling=dict(seed=4, temperature=1.0, top_k=0, top_p=1.0), typical_p=0.7)
    folder, m = folder_with("model_cutoffs", {"epsilon_cutoff": 0.002, "eta_cutoff": 0.01})
    record("sample_epsilon_eta", m, PROMPTS[0], None, model_folder=folder,
           sampling=dict(seed=21, temperature=1.2, top_k=0, top_p=1.0))

    # Beam search: plain, with an adapter, ending on eos (model_eos), with the length penalty and
    # each early_stopping, and beam sampling.
    got = record("beam_base", base, PROMPTS[1], None, num_beams=4)
    assert got != greedy, "beam search found the greedy text: the case tests little"
    record("beam_adapter", adapted, PROMPTS[0], "adapter", num_beams=3)
    got = record("beam_eos", eos_model, PROMPTS[1], None, model_folder="model_eos", num_beams=3)
    for settings in ({"length_penalty": 2.0, "early_stopping": True},
                     {"length_penalty": -0.5, "early_stopping": False},
                     {"length_penalty": 0.7, "early_stopping": "never"}):
        label = str(settings["early_stopping"]).lower()
        folder, m = folder_with(f"model_beam_{label}", dict(settings, num_beams=3), source=eos_dir)
        record(f"beam_{label}", m, PROMPTS[1], None, model_folder=folder)
    record("beam_sample", adapted, PROMPTS[0], "adapter",
           sampling=dict(seed=17, temperature=0.9, top_k=50, top_p=0.95), num_beams=3)
    # top_k below the draws a step needs (2 x 3): tokens of probability 0 get drawn too.
    record("beam_sample_few_tokens", base, PROMPTS[1], None,
           sampling=dict(seed=0, temperature=1.0, top_k=5, top_p=1.0), num_beams=3)
    record("beam_repetition_penalty", base, PROMPTS[0], None, num_beams=2, repetition_penalty=1.5,
           no_repeat_ngram_size=3)

    for c in cases:
        c["model"] = os.path.basename(c["model"])

    # `autotrain chat`: each message asked in the guanaco format after the conversation so far,
    # the reply cut where the model starts the next "### Human:" turn.
    messages = ["What is 12 plus 7?", "Reverse the word hello."]
    conversation, stdout, replies = "", "", []
    for msg in messages:
        ask = f"### Human: {msg}### Assistant:"
        ids = tok(conversation + ask, return_tensors="pt").input_ids
        with torch.no_grad():
            seq = base.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                do_sample=False, pad_token_id=11)
        reply = tok.decode(seq[0, ids.shape[1]:].tolist(), skip_special_tokens=True).split("### Human:")[0]
        conversation += ask + reply
        replies.append(reply.lstrip(" \n") + "\n")
        stdout += replies[-1]
    chat = dict(messages=messages, stdout=stdout, first_reply_line=replies[0])

    # The warpers alone, on logits with ties at the top-k boundary.
    torch.manual_seed(13)
    logits = torch.randn(4, 500) * 3
    logits[1, :10] = logits[1].max() + 1  # ten tokens tied for first: top_k=5 keeps them all
    logits[2, 100:] = -1e4
    warp = {"logits": logits}
    # (temperature, top_k, top_p, min_p, typical_p, epsilon_cutoff, eta_cutoff, min_tokens_to_keep)
    settings = [(0.7, 40, 0.9, 0, 1.0, 0, 0, 1), (1.0, 5, 1.0, 0, 1.0, 0, 0, 1), (1.3, 0, 0.5, 0, 1.0, 0, 0, 1),
                (0.5, 1000, 0.999, 0, 1.0, 0, 0, 1), (1.0, 0, 0.05, 0, 1.0, 0, 0, 1),
                (1.0, 0, 1.0, 0.1, 1.0, 0, 0, 1), (0.8, 0, 1.0, 0, 0.6, 0, 0, 1), (1.0, 0, 1.0, 0, 1.0, 3e-3, 0, 1),
                (1.0, 0, 1.0, 0, 1.0, 0, 0.02, 1), (1.2, 30, 0.9, 0.05, 0.9, 1e-3, 5e-3, 1),
                (1.0, 1, 0.01, 0.9, 0.01, 0.5, 0.5, 3)]
    for i, (t, k, p, min_p, typical, eps, eta, keep) in enumerate(settings):
        procs = LogitsProcessorList()
        if t != 1.0:
            procs.append(TemperatureLogitsWarper(t))
        if k:
            procs.append(TopKLogitsWarper(top_k=k, min_tokens_to_keep=keep))
        if p < 1.0:
            procs.append(TopPLogitsWarper(top_p=p, min_tokens_to_keep=keep))
        if min_p:
            procs.append(MinPLogitsWarper(min_p=min_p, min_tokens_to_keep=keep))
        if typical < 1.0:
            procs.append(TypicalLogitsWarper(mass=typical, min_tokens_to_keep=keep))
        if eps:
            procs.append(EpsilonLogitsWarper(epsilon=eps, min_tokens_to_keep=keep))
        if eta:
            procs.append(EtaLogitsWarper(epsilon=eta, min_tokens_to_keep=keep))
        warp[f"warped_{i}"] = procs(None, logits.clone())
    save_file(warp, os.path.join(out, "warp.safetensors"))

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"cases": cases, "warp_settings": settings, "chat": chat}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
