"""Lesson 07, ``notebooks/07_alternatives_and_caveats.ipynb``: Alternatives to batch normalization, and its caveats."""
