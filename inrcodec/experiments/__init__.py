"""The research experiments run on the codec's own SIREN (none of the codec depends on them).

- :mod:`.lottery`: winning, random and losing tickets, round by round (docs/lottery.md);
- :mod:`.routing`: Routing the Lottery, one ticket per image region, against one IMP mask
  (docs/rtl.md); the encoder's region tickets themselves are ``inrcodec.encoder.rtl``;
- :mod:`.checkpoint`: the run folders' atomic writes and resuming, shared by both;
- :mod:`.spectra`, :mod:`.inputs`: power spectra, and the image an experiment runs on;
- :mod:`.plots`: every figure, drawn from the data files (matplotlib, the ``bench`` extra).

Their commands are in ``inrcodec/cli/experiments.py``; nothing here imports click.
"""
