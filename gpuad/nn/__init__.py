"""gpuad.nn: Modules, layers and their functional maths, with torch.nn's names and defaults.

Above ops/ (which it composes) and below optim/ (which updates the Parameters it registers).
Re-exports only: module.py (Module, Parameter, containers), layers.py, activation.py, loss.py,
and the submodules functional, init, parallel, utils and summary.
"""
from . import functional, init, parallel, utils  # noqa: F401
from .activation import (CELU, ELU, GELU, GLU, SELU, Hardshrink, Hardsigmoid,  # noqa: F401
                         Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU,
                         ReLU, ReLU6, RReLU, Sigmoid, SiLU, Softmax, Softmax2d, Softmin,
                         Softplus, Softshrink, Softsign, Tanh, Tanhshrink, Threshold)
from .attention import MultiheadAttention  # noqa: F401
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d,  # noqa: F401
                     Conv2d, Dropout, Embedding, Flatten, Identity, LayerNorm, Linear,
                     MaxPool2d, Unflatten, Upsample)
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss,  # noqa: F401
                   CrossEntropyLoss, CTCLoss, GaussianNLLLoss, HingeEmbeddingLoss, HuberLoss,
                   KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, MultiLabelSoftMarginLoss,
                   MultiMarginLoss, NLLLoss, PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss,
                   TripletMarginLoss)
from .layers import ConvTranspose2d, Fold, Unfold  # noqa: F401
from .module import (  # noqa: F401
    Module, ModuleDict, ModuleList, Parameter, ParameterDict, ParameterList, Sequential)
from .normalization import GroupNorm, RMSNorm  # noqa: F401
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from .summary import ModelSummary, summary  # noqa: F401
from .. import deprecation
# ---- layers of issue 15: convolution, pooling, padding, resampling, norms, dropout, ...
from .conv import Conv1d, Conv3d, ConvTranspose1d, ConvTranspose3d  # noqa: F401
from .distance import CosineSimilarity, PairwiseDistance  # noqa: F401
from .dropout import (AlphaDropout, Dropout1d, Dropout2d, Dropout3d,  # noqa: F401
                      FeatureAlphaDropout)
from .linear import Bilinear  # noqa: F401
from .normalization import (InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,  # noqa: F401
                            LocalResponseNorm)
from .padding import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d,  # noqa: F401
                      ConstantPad2d, ConstantPad3d, ReflectionPad1d, ReflectionPad2d,
                      ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d,
                      ZeroPad1d, ZeroPad2d, ZeroPad3d)
from .pixelshuffle import PixelShuffle, PixelUnshuffle  # noqa: F401
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,  # noqa: F401
                      AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool3d, MaxPool1d,
                      MaxPool3d)
from .sparse import EmbeddingBag  # noqa: F401
from .transformer import (Transformer, TransformerDecoder,  # noqa: F401
                          TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer)
from .upsampling import UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401


def __getattr__(name):
    if name == "packing":  # renamed; importing the alias warns
        import importlib
        return importlib.import_module("gpuad.nn.packing")
    raise deprecation.missing_name("gpuad.nn", name)
