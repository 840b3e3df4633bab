# Builds blocks.Block with arguments torch rejects: the finding lies in blocks.py.
from blocks import Block

block = Block(100, 8)
