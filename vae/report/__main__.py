"""``python -m vae.report <multirun folder>``."""

from vae.report import main

main()
