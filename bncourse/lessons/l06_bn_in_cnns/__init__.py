"""Lesson 06, ``notebooks/06_bn_in_cnns.ipynb``: Batch normalization in convolutional networks."""
