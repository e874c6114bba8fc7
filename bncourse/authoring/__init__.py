"""Authoring the course from its notebooks: one notebook-file module, the student edition,
the notebook linter and the slides.

* :mod:`~bncourse.authoring.notebook_file` -- load and validate a notebook file, cell tags,
  content hashes.
* :mod:`~bncourse.authoring.release` -- the student edition (``bncourse release``).
* :mod:`~bncourse.authoring.lint` -- ``bncourse lint-notebooks``.
* :mod:`~bncourse.authoring.slides` -- reveal.js decks (``bncourse slides``).
* :mod:`~bncourse.authoring.browser` -- headless Chromium for the decks' PDF export.
"""
