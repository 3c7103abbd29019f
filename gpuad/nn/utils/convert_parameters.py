"""Parameters as one flat vector and back, like torch.nn.utils.convert_parameters."""
from ... import ops
from ...tensor import Tensor


def _same_device(parameters):
    device = None
    for p in parameters:
        if device is not None and p.device != device:
            raise TypeError(f"Found two parameters on different devices, this is currently not "
                            f"supported (got {device} and {p.device}); move the model to one "
                            f"device first")
        device = p.device
        yield p


def parameters_to_vector(parameters):
    """Every parameter flattened and joined, in order, into one 1-D tensor (differentiable)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return ops.cat([p.reshape(-1) for p in _same_device(parameters)])


def vector_to_parameters(vec, parameters):
    """Make each parameter, in order, a view of the next numel() entries of the 1-D vec, like
    torch (param.data is replaced: the parameters then share vec's memory)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a gpuad.Tensor, but got: "
                        f"{type(vec).__name__}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    pointer = 0
    for param in _same_device(parameters):
        n = param.numel()
        if pointer + n > vec.numel():
            raise RuntimeError(f"vector_to_parameters: vec of {vec.numel()} entries is too short "
                               f"for the parameters (at least {pointer + n} needed)")
        param.data = vec[pointer:pointer + n].reshape(tuple(param.shape)).data
        pointer += n
