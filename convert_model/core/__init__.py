"""The ground floor: leaves every package may import (errors, quiet, hashing, threads, text).

Nothing here imports another part of the project, so importing a leaf never pulls in the
pipeline.
"""
