"""The mutant catalogue: deliberately wrong implementations of each exercise.

Each module ``tests/mutants/<topic>.py`` defines

* ``MUTANTS``: a list of ``(exercise_id, diagnosis_substring, impl)`` — ``check`` must
  fail on ``impl`` and its diagnosis must contain ``diagnosis_substring``;
* ``CORRECT``: a list of ``(exercise_id, impl)`` — correct implementations written
  differently from the solution (loops, other formulas); each must get full points.

Mutants are written the way a student would write them, independently of the
``Mistake`` implementations in the package.  ``tests/test_mutants.py`` runs them all.
"""
