"""Our token cache's blocks (autotrain-data/train.safetensors) as a torch Dataset: what the
reference trainers of the benchmarks in this folder train on, so both sides see the same data."""
import torch
from safetensors.numpy import load_file


class TokenBlocks(torch.utils.data.Dataset):
    def __init__(self, path):
        blocks = load_file(path)
        self.ids = torch.from_numpy(blocks["input_ids"]).long()
        self.labels = torch.from_numpy(blocks["labels"]).long()

    def __len__(self):
        return self.ids.shape[0]

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i], "attention_mask": torch.ones_like(self.ids[i])}
