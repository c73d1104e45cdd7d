"""The bundle: staged and renamed into place, its manifest, model card, and verification."""
