"""Token ids of texts with the Hugging Face `tokenizers` library (the reference for the text
rows of `autotrain eval`): prints one JSON list, the ids of all texts concatenated.

  tokenize_texts.py TOKENIZER_JSON TEXT...
"""
import json
import sys

from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
print(json.dumps([i for t in sys.argv[2:] for i in tok.encode(t).ids]))
