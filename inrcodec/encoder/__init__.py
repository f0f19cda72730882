"""The encoder: fit, prune, code. Nothing in ``inrcodec.decoder`` may import from here."""
