"""Complete convolutional classifiers built from the library's layers.

- ``ThreeLayerConvNet``: conv - relu - 2x2 max pool - affine - relu - affine - softmax
- ``ConvNet``: any VGG-style stack written in the sizing notation, e.g.
  ``ConvNet(["INPUT 32x32x3", "CONV3-16", "CONV3-16", "POOL2", "FC-64", "FC-10"])``

Both follow the CS231n model interface used by ``Solver``: a ``params`` dict of arrays and
``loss(X, y=None)`` returning class scores (y is None) or ``(loss, grads)``.
"""

from .cnn import ThreeLayerConvNet
from .convnet import ConvNet

__all__ = ["ThreeLayerConvNet", "ConvNet"]
