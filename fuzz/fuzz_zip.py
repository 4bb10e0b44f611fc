"""Fuzz target: torch.save zip files (any folder, data.pkl, data/<key>, version, byteorder)
through load_state_dict, then discovery (find_rnns) and load of every RNN found.

The custom mutator (fuzz/_mutators.py: mutate_zip) keeps the container valid around the mutated contents.

    python fuzz/fuzz_zip.py [libFuzzer flags] CORPUS_DIR...   (fuzz/run.py passes the right ones)
"""
import sys

import atheris
from _instrumented import READER_MODULES

with atheris.instrument_imports(include=READER_MODULES):
    import fastrnn  # noqa: F401  (instrumented here, before anything else imports it)

import _harness
import _mutators

if __name__ == "__main__":
    _harness.start()
    atheris.Setup(sys.argv, _harness.file_target(".pt"), custom_mutator=_mutators.mutate_zip)
    atheris.Fuzz()
