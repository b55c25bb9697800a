"""The published standardisation constants of each image set, in one place: the dataset
loader and the upload decoder both use them, so a student's picture lands in the same range
as the training images."""
from __future__ import annotations

DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760  # of load_digits()/16, all 1797 images
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
