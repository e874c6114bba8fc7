"""Lesson 08, ``notebooks/08_bn_in_a_network.ipynb``: your batch norm inside a network, backpropagated by hand."""
