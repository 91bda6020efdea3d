#!/usr/bin/env python3
"""Oracle for the token cache's blocks: tokenizes rows with transformers' AutoTokenizer and cuts
them into blocks the way the tutorial's stack did.

- trainer "default": AutoTrain 0.6.44 (trainers/clm): text column with fillna(""), EOS appended
  as text when add_eos_token, then the real `datasets` calls: `map(tokenize, batched=True,
  num_proc=1)` (no truncation) and `map(group_texts, batched=True, num_proc=4)`, so the library
  decides the scheduling (4 contiguous shards, map batches of 1000 rows; group_texts, AutoTrain's
  function copied below, drops each batch's remainder).
- trainer "sft": trl 0.7.2's ConstantLengthDataset (packing=True): examples gathered into
  buffers of at least seq_length * 3.6 * 1024 characters, each buffer tokenized, every example
  followed by eos_token_id, cut into seq_length chunks, the last partial chunk dropped (trl's
  in-buffer shuffle left out: the order is compared here).
- response_template (default trainer only: trl has no completions-only masks with packing):
  trl's DataCollatorForCompletionOnlyLM (0.7.2 .. 0.13, `torch_call`) per example, written out
  because trl is not part of the pinned stack:
  - without instruction_template: labels up to and including the LAST occurrence of the
    template's ids are -100 (trl's loop over the candidate positions keeps the last match);
    without any occurrence, all are -100;
  - with instruction_template: the ends of the response templates and the starts of the
    instruction templates pair up (a leading 0 when the first answer comes before the first
    turn); labels[:end_0] and labels[start_k:end_k] are -100, and everything from the last
    turn on when it has no answer; without either template, all are -100.

usage: group_reference.py MODEL_DIR CASES_JSON OUT_DIR
CASES_JSON: [{"name", "data" (jsonl with a "text" field), "trainer", "block_size", "add_eos",
"response_template", "instruction_template"}]. Writes OUT_DIR/<name>.json: {"count", "input_ids", "labels"}.
"""
import json
import sys
from itertools import chain

from datasets import Dataset, disable_progress_bars
from transformers import AutoTokenizer

IGNORE = -100


def starts(ids, template):
    n = len(template)
    return [i for i in range(len(ids) - n + 1) if ids[i : i + n] == template]


def mask(ids, template, instruction=None):
    labels = list(ids)
    response_ends = [i + len(template) for i in starts(ids, template)]
    if not response_ends:
        return [IGNORE] * len(ids)
    if not instruction:
        end = response_ends[-1]
        labels[:end] = [IGNORE] * end
        return labels
    human = starts(ids, instruction)
    if not human:
        return [IGNORE] * len(ids)
    if human[0] > response_ends[0]:
        human = [0] + human
    for k, (start, end) in enumerate(zip(human, response_ends)):
        if k == 0:
            labels[:end] = [IGNORE] * end
        else:
            labels[start:end] = [IGNORE] * (end - start)
    if len(response_ends) < len(human):
        labels[human[-1] :] = [IGNORE] * (len(labels) - human[-1])
    return labels


def group_texts(examples, block_size):
    # AutoTrain 0.6.44's group_texts, applied to one map batch.
    concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
    total_length = len(concatenated[list(examples.keys())[0]])
    if total_length >= block_size:
        total_length = (total_length // block_size) * block_size
    else:
        total_length = 0
    return {k: [t[i : i + block_size] for i in range(0, total_length, block_size)] for k, t in concatenated.items()}


def default_trainer(tok, texts, case):
    if case["add_eos"]:
        texts = [t + tok.eos_token for t in texts]

    def tokenize(batch):
        ids = tok(batch["text"])["input_ids"]
        labels = [mask(x, case["template_ids"], case["instruction_ids"]) if case["template_ids"] else list(x)
                  for x in ids]
        return {"input_ids": ids, "labels": labels}

    ds = Dataset.from_dict({"text": texts})
    ds = ds.map(tokenize, batched=True, num_proc=1, remove_columns=["text"])
    ds = ds.map(group_texts, batched=True, num_proc=4, fn_kwargs={"block_size": case["block_size"]})
    out = ds.to_dict()
    return out["input_ids"], out["labels"]


def sft_trainer(tok, texts, case):
    seq_length = case["block_size"]
    max_buffer_size = seq_length * 3.6 * 1024
    eos = tok.eos_token_id
    out_ids, out_labels = [], []
    it = iter(texts)
    more = True
    while more:
        buffer, buffer_len = [], 0
        while True:
            if buffer_len >= max_buffer_size:
                break
            try:
                buffer.append(next(it))
                buffer_len += len(buffer[-1])
            except StopIteration:
                more = False
                break
        if not buffer:
            break
        all_ids, all_labels = [], []
        for x in tok(buffer, truncation=False)["input_ids"]:
            all_ids.extend(x + [eos])
        all_labels = list(all_ids)  # ConstantLengthDataset: labels = input_ids
        for i in range(0, len(all_ids), seq_length):
            if len(all_ids[i : i + seq_length]) == seq_length:
                out_ids.append(all_ids[i : i + seq_length])
                out_labels.append(all_labels[i : i + seq_length])
    return out_ids, out_labels


def main():
    disable_progress_bars()
    model_dir, cases_path, out_dir = sys.argv[1:4]
    tok = AutoTokenizer.from_pretrained(model_dir)
    for case in json.load(open(cases_path, encoding="utf-8")):
        rows = [json.loads(line) for line in open(case["data"], encoding="utf-8") if line.strip()]
        texts = [r.get("text") or "" for r in rows]  # pandas fillna("")
        t = case.get("response_template", "")
        case["template_ids"] = tok.encode(t, add_special_tokens=False) if t else None
        h = case.get("instruction_template", "")
        case["instruction_ids"] = tok.encode(h, add_special_tokens=False) if h else None
        fn = sft_trainer if case["trainer"] == "sft" else default_trainer
        ids, labels = fn(tok, texts, case)
        with open(f"{out_dir}/{case['name']}.json", "w", encoding="utf-8") as f:
            json.dump({"count": len(ids), "input_ids": ids, "labels": labels}, f)


if __name__ == "__main__":
    main()
