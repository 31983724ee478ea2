"""`cnnlab.optim`, laid out as `torch.optim`: the optimizers SGD, Adam, AdamW (backend
kernels), RMSprop, Adagrad, Adadelta (the backend's array operations), all with
PyTorch's update rules and defaults, and the schedules in `cnnlab.optim.lr_scheduler`.

>>> opt = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
>>> opt.zero_grad(); loss.backward(); opt.step()
>>> from cnnlab.optim.lr_scheduler import StepLR
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler"]
