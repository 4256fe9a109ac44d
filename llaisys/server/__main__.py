"""`python -m llaisys.server [MODEL] [options]`: the same as `llaisys serve`."""

import sys

from llaisys.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
