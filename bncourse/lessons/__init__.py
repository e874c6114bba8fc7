"""One package per notebook: ``lNN_topic`` serves ``notebooks/NN_topic.ipynb``.

Each lesson holds its notebook's experiments and figures (``experiments``), the exercise
declarations (``exercises``: ids, cases, how to call, diagnoses), the instructor's
implementations (``solutions``) and the known mistakes (``mistakes``).  Lessons never
import each other; ``solutions`` and ``mistakes`` are loaded only by the grader and the
tests (see CONTRIBUTING.md).
"""
