"""The modules every fuzz target instruments for coverage: the readers and what a loaded file goes through. One list,
imported (it imports nothing) before `atheris.instrument_imports`, so a module split out of a reader is added once."""
READER_MODULES = ["fastrnn._torchfile", "fastrnn._pickle_vm", "fastrnn._pickle_globals", "fastrnn._errors",
                  "fastrnn._readers", "fastrnn.loading", "fastrnn._torch_names", "fastrnn._layout"]
