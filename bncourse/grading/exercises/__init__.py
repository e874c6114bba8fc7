"""Exercise definitions, one module per topic; every module here is imported on first use.

Each module builds :class:`~bncourse.grading.registry.Exercise` objects and passes them
to :func:`~bncourse.grading.registry.register`.  Solutions and mistake implementations
live next to the exercise (or in :mod:`bncourse.reference`), never in the notebooks.
"""
