"""PyTorch twins of bench's models, for timing this project's train steps against PyTorch's.

    python dropout_study/torch_peers.py BATCHES.npz OUT.json REPEATS MODEL...

Run by `python -m dropout_study.bench --torch_python=PYTHON` in an interpreter with torch
(`pip install -e '.[bench]'`, or a separate environment), this file imports only numpy and torch.
Each twin has the layers, sizes, dropout rates and Adam settings of configs/timing.py's model
(Keras-style batch-norm momentum 0.99 / epsilon 1e-3, Adam epsilon 1e-7) and trains on the real
batch bench saved (`<model>_x`, `<model>_y`). A step is forward, loss, backward and the Adam
update, dropout on; OUT.json gets each model's parameter count and step times in ms. The LSTM
twin has 512 parameters more than the project's: torch's LSTM keeps two bias vectors.
"""

import json
import sys
import time

import numpy as np
import torch
from torch import nn

WARMUP = 3


class VGG(nn.Module):
    """Post 001's VGG-like net: per block conv SAME, BN, ReLU, conv VALID, BN, ReLU, pool, drop."""

    def __init__(self, filters=(64, 128, 256), ndense=512, block_rate=0.2, dense_rate=0.5):
        super().__init__()
        layers, channels = [], 3
        for features in filters:
            for padding in (1, 0):
                layers += [
                    nn.Conv2d(channels, features, 3, padding=padding),
                    nn.BatchNorm2d(features, eps=1e-3, momentum=0.01),
                    nn.ReLU(),
                ]
                channels = features
            layers += [nn.MaxPool2d(2), nn.Dropout(block_rate)]
        head = [
            nn.Flatten(),
            nn.Linear(channels * 2 * 2, ndense),
            nn.ReLU(),
            nn.Dropout(dense_rate),
        ]
        head += [
            nn.Linear(ndense, ndense),
            nn.ReLU(),
            nn.Dropout(dense_rate),
            nn.Linear(ndense, 10),
        ]
        self.net = nn.Sequential(*layers, *head)

    def forward(self, images_nhwc):
        return self.net(images_nhwc.permute(0, 3, 1, 2))


class LSTMClassifier(nn.Module):
    """Post 000's LSTM: embedding, one LSTM layer, the last step's state, dropout, dense."""

    def __init__(self, vocab=20000, embed=128, hidden=128, output_rate=0.5):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(output_rate), nn.Linear(hidden, 2))

    def forward(self, tokens):
        states, _ = self.lstm(self.embed(tokens))
        return self.head(states[:, -1])  # Keras 'pre' padding: the last step is the last token


class TextCNN(nn.Module):
    """Post 000's text CNN: embedding, Conv1D width 3, ReLU, global max pool, dropout, dense."""

    def __init__(self, vocab=20000, embed=128, filters=128, width=3, output_rate=0.5):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.conv = nn.Conv1d(embed, filters, width)
        self.head = nn.Sequential(nn.Dropout(output_rate), nn.Linear(filters, 2))

    def forward(self, tokens):
        x = torch.relu(self.conv(self.embed(tokens).transpose(1, 2)))
        return self.head(x.amax(dim=2))


TWINS = {  # bench model -> (twin, Adam learning rate)
    "cifar10_vgg": (VGG, 2e-3),
    "imdb_rnn": (LSTMClassifier, 1e-3),
    "imdb_cnn": (TextCNN, 1e-3),
}


def step_times(name, x, y, repeats):
    """(parameter count, [ms per train step] over `repeats` steps after WARMUP)."""
    torch.manual_seed(0)
    twin, lr = TWINS[name]
    model = twin().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    x = torch.from_numpy(x if x.dtype.kind == "f" else x.astype(np.int64))
    y = torch.from_numpy(y.astype(np.int64))
    times = []
    for i in range(WARMUP + repeats):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if i >= WARMUP:
            times.append(1e3 * (time.perf_counter() - start))
    return sum(p.numel() for p in model.parameters()), times


def main(argv):
    batches, out, repeats, *names = argv
    data = np.load(batches)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "models": {}}
    for name in names:
        params, times = step_times(name, data[f"{name}_x"], data[f"{name}_y"], int(repeats))
        result["models"][name] = {"params": params, "step_ms": times}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1:])
