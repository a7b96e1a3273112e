"""Micro-expressions on the host: the MEGC 2019 flow set and its LOSO protocol (model B),
CASME II / SAMM frame sequences (model A), training, int8 conversion and the CLI."""
