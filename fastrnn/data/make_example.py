"""Makes the bundled example that `fastrnn info`, `fastrnn run` and `fastrnn bench --model` use when no file
is given: a small model's state_dict saved by torch.save, with an input and torch's output for it.

    python fastrnn/data/make_example.py      # needs torch; rewrites the files beside this script

The model is a tiny keyword spotter: a linear frontend, a 2-layer LSTM under the prefix `encoder.lstm`, and a
classifier head, so the file holds other keys too, as a real checkpoint does.
"""
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
FEATURES, INPUT_SIZE, HIDDEN, CLASSES = 40, 16, 32, 5
T, B = 20, 2


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.frontend = torch.nn.Linear(FEATURES, INPUT_SIZE)
        self.lstm = torch.nn.LSTM(INPUT_SIZE, HIDDEN, num_layers=2)


class KeywordSpotter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = torch.nn.Linear(HIDDEN, CLASSES)


def main():
    torch.manual_seed(0)
    model = KeywordSpotter().eval()
    torch.save(model.state_dict(), HERE / "example.pt")
    x = torch.randn(T, B, INPUT_SIZE)  # what the LSTM sees: (T, B, input_size), after the frontend
    with torch.no_grad():
        out, (h_n, c_n) = model.encoder.lstm(x)
    np.save(HERE / "example_input.npy", x.numpy())
    np.savez(HERE / "example_expected.npz", output=out.numpy(), h_n=h_n.numpy(), c_n=c_n.numpy())
    print(f"wrote example.pt, example_input.npy {tuple(x.shape)}, example_expected.npz {tuple(out.shape)}")


if __name__ == "__main__":
    main()
