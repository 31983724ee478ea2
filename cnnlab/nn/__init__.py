"""`cnnlab.nn`: layers, losses, containers and initialisers with PyTorch's names."""
from . import functional, init, parallel
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout, Dropout2d
from .linear import Flatten, Identity, Linear, Unflatten
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .lazy import LazyBatchNorm1d, LazyBatchNorm2d, LazyConv2d, LazyLinear, UninitializedParameter
from .module import Module, Parameter
from .parallel import DataParallel
from .normalization import BatchNorm1d, BatchNorm2d, Normalize
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, SumPool2d

__all__ = [
    "functional", "init", "parallel", "DataParallel", "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict",
    "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "SumPool2d", "AdaptiveAvgPool2d", "Linear", "Flatten",
    "Unflatten", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "Dropout", "Dropout2d", "BatchNorm1d", "BatchNorm2d", "Normalize", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "MSELoss",
    "L1Loss", "LazyConv2d", "LazyLinear", "LazyBatchNorm1d", "LazyBatchNorm2d", "UninitializedParameter",
]
