"""craft: adversarial images on a torch source model.

Importing this package is cheap and torch-free; the sub-modules that need
torch (``zoo``, ``attacks``, ``job``, ``export``; and ``channel.twin``) import it themselves.
"""
