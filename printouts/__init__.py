"""The printouts stage: lay a batch out on printable sheets.

``printouts.sheets.print_batch(batch_dir, paper, tile_mm, layout, cover)``
writes ``BATCH/sheets.pdf`` and ``BATCH/layout.json``; ``printouts.cli``
registers the ``photoproof print`` command. Torch-free.
"""
