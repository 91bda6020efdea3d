"""The reference side of the hub tests: huggingface_hub (and transformers) against the fake hub.

  hub_ref.py download REPO TYPE PATTERN...
      snapshot_download into $HF_HUB_CACHE from $HF_ENDPOINT; prints the snapshot folder.
  hub_ref.py upload REPO FOLDER MESSAGE
      create_repo(private=True, exist_ok=True) + upload_folder to $HF_ENDPOINT (set
      HF_HUB_DISABLE_XET=1: the fake hub speaks plain LFS); prints the commit URL.
  hub_ref.py hf ARGS...
      huggingface_hub's `hf` command line with ARGS.
  hub_ref.py check REPO TYPE SOURCE_DIR PATTERN...
      offline ($HF_HUB_OFFLINE=1): every file of SOURCE_DIR matching a pattern comes back from
      the cache through hf_hub_download(local_files_only=True) with the same bytes, and
      snapshot_download(local_files_only=True) accepts the snapshot; for a model, transformers'
      AutoConfig and AutoTokenizer load it by id. Prints "ok".
"""
import fnmatch
import os
import sys

from huggingface_hub import hf_hub_download, snapshot_download


def main():
    if sys.argv[1] == "hf":
        # The `hf` command line itself (e.g. `hf upload REPO FOLDER --revision dev`).
        from huggingface_hub.cli.hf import main as hf_main

        sys.argv = ["hf"] + sys.argv[2:]
        sys.exit(hf_main())
    mode, repo, repo_type = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "upload":
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo, private=True, exist_ok=True)
        print(api.upload_folder(folder_path=sys.argv[3], repo_id=repo, commit_message=sys.argv[4]))
        return
    if mode == "download":
        print(snapshot_download(repo, repo_type=repo_type, allow_patterns=sys.argv[4:]))
        return
    source, patterns = sys.argv[4], sys.argv[5:]
    assert os.environ.get("HF_HUB_OFFLINE") == "1", "check runs offline"
    checked = 0
    for base, _, names in os.walk(source):
        for name in names:
            path = os.path.relpath(os.path.join(base, name), source).replace(os.sep, "/")
            if not any(fnmatch.fnmatchcase(path, p) for p in patterns):
                continue
            got = hf_hub_download(repo, path, repo_type=repo_type, local_files_only=True)
            with open(got, "rb") as a, open(os.path.join(source, path), "rb") as b:
                if a.read() != b.read():
                    sys.exit(f"{path}: the cached bytes differ from the repository's")
            checked += 1
    if not checked:
        sys.exit("no file checked")
    snapshot_download(repo, repo_type=repo_type, allow_patterns=patterns, local_files_only=True)
    if repo_type == "model":
        from transformers import AutoConfig, AutoTokenizer

        config = AutoConfig.from_pretrained(repo)
        tokenizer = AutoTokenizer.from_pretrained(repo)
        if config.model_type != "falcon" or not tokenizer("hello").input_ids:
            sys.exit("transformers did not load the model's config and tokenizer from the cache")
    print("ok")


if __name__ == "__main__":
    main()
