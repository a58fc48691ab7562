"""The console: what the command line prints, and the flags several commands share. Torch-free.

Library code logs; the CLI commands (each room's ``cli``, ``app.py``) and the live views print
through these modules:

- ``terminal``: the CLI's console (stdout) and error console (stderr);
- ``progress``: the progress bar of long jobs (craft), adapted to a job's ``progress(label, total)`` callback;
- ``options``: the preprocessing and label flags shared by craft, capture, sweep and ``models export``,
  the camera frame size, and the deprecated spellings of renamed flags.
"""
