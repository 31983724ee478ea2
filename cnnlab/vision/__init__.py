"""torchvision under cnnlab: `import cnnlab.vision as torchvision`.

- `datasets`: MNIST, FashionMNIST, CIFAR10, ImageFolder (cnnlab's checked loaders)
- `transforms`: Compose, ToTensor, Normalize, Resize, RandomCrop, ... (and `functional`)
- `utils`: make_grid, save_image
- `models`: cnnlab's model zoo by name
"""
from . import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
