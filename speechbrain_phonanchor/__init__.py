"""speechbrain-phonanchor: unsupervised cross-lingual speech emotion recognition
by anchoring on vowels that carry emotion alike across languages (AGA-CL).

Stages (each one command and one module): prepare → align → extract → analyse →
train → grid → export.  See README.md and DESIGN.md.
"""

__version__ = "0.1.0"
