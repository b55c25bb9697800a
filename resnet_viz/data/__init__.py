"""Datasets (``datasets``: synthetic 2-D sets, the 1-D grid, digits, local MNIST/CIFAR files)
and user images (``upload``). Imports only ``spec``, numpy, torch, PIL and scikit-learn."""
