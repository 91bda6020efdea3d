"""Tokenizer throughput: ours vs Hugging Face `tokenizers`, same corpus, same run.

    python bench/tokenizer/run_bench.py [--build build] [--tokenizer DIR] [--mb 4] [--threads N]

Builds nothing: expects BUILD/bench/bench_tokenizer (cmake --build BUILD --target bench_tokenizer).
The reference runs in subprocesses: single thread with TOKENIZERS_PARALLELISM=false, batch
with it true and RAYON_NUM_THREADS=N. Both encode the same documents without special tokens;
the ids are compared by checksum, so a fast wrong answer cannot pass. Prints a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference", "tokenizer"))

from corpus import make_corpus, make_prose_corpus, write_docs  # noqa: E402

REFERENCE = r"""
import json, struct, sys, time
from tokenizers import Tokenizer
path, corpus, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(corpus, "rb").read()
docs, pos = [], 0
while pos < len(data):
    (n,) = struct.unpack_from("<I", data, pos); pos += 4
    docs.append(data[pos:pos + n].decode("utf-8", "replace")); pos += n
t = time.perf_counter(); tok = Tokenizer.from_file(path); load = time.perf_counter() - t
t = time.perf_counter(); enc = tok.encode_batch(docs, add_special_tokens=False); cold = time.perf_counter() - t
best = 1e30
for _ in range(repeat):
    t = time.perf_counter(); enc = tok.encode_batch(docs, add_special_tokens=False); best = min(best, time.perf_counter() - t)
h = 1469598103934665603
M = (1 << 64) - 1
for e in enc:
    for i in e.ids:
        h = ((h ^ i) * 1099511628211) & M
    h = ((h ^ 0xFFFFFFFF) * 1099511628211) & M
print(json.dumps({"load_s": load, "cold_s": cold, "warm_s": best, "tokens": sum(len(e.ids) for e in enc),
                  "checksum": f"{h:016x}"}))
"""


def run_reference(python, tok_file, corpus, repeat, parallel, threads):
    env = dict(os.environ, TOKENIZERS_PARALLELISM="true" if parallel else "false", RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([python, "-c", REFERENCE, tok_file, corpus, str(repeat)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "..", "shared", "data", "falcon-7b"))
    ap.add_argument("--mb", type=float, default=4.0, help="corpus size in MB")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", choices=["mixed", "prose"], default="prose",
                    help="mixed: the parity-test mix (many scripts, emoji, invalid UTF-8); prose: English, code, numbers")
    args = ap.parse_args()
    tok_file = args.tokenizer if args.tokenizer.endswith(".json") else os.path.join(args.tokenizer, "tokenizer.json")
    binary = os.path.join(args.build, "bench", "bench_tokenizer")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cmake --build {args.build} --target bench_tokenizer")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.bin")
        make = make_corpus if args.corpus == "mixed" else make_prose_corpus
        docs = make(min_bytes=int(args.mb * 1e6), seed=7)
        # The reference takes str: pass the same documents it sees (invalid UTF-8 replaced) to both.
        docs = [d.decode("utf-8", "replace").encode() for d in docs]
        write_docs(corpus, docs)
        ours = json.loads(subprocess.run([binary, "--tokenizer", tok_file, "--corpus", corpus, "--threads",
                                          str(args.threads), "--repeat", str(args.repeat)],
                                         check=True, capture_output=True, text=True).stdout)
        hf1 = run_reference(sys.executable, tok_file, corpus, args.repeat, parallel=False, threads=1)
        hfn = run_reference(sys.executable, tok_file, corpus, args.repeat, parallel=True, threads=args.threads)
    same = ours["checksum"] == hf1["checksum"] == hfn["checksum"] == ours["batch_checksum"]
    mb = ours["bytes"] / 1e6

    def row(what, ours_s, ref_s):
        return f"| {what} | {mb / ours_s:.1f} | {mb / ref_s:.1f} | {ref_s / ours_s:.2f}x |"

    import platform
    import tokenizers
    print(f"corpus: {args.corpus}, {ours['documents']} documents, {mb:.2f} MB, {ours['tokens']} tokens; "
          f"tokenizer: {tok_file}; threads: {args.threads}; cpu: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; tokenizers {tokenizers.__version__}; ids identical: {same}")
    print("\n| encode (MB/s) | ours | HF tokenizers | ratio |\n|---|---|---|---|")
    print(row("single thread, cold cache (first pass)", ours["single_cold_s"], hf1["cold_s"]))
    print(row("single thread, warm (best of repeats)", ours["single_warm_s"], hf1["warm_s"]))
    print(row(f"batch, {args.threads} threads", ours["batch_s"], hfn["warm_s"]))
    print(f"\nload: ours {ours['load_s'] * 1000:.0f} ms, HF {hf1['load_s'] * 1000:.0f} ms")
    if not same:
        print("ERROR: the ids differ from the reference", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
