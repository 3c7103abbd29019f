"""Which PyTorch names gpuad has: a table for the README, so a user can look before porting.

    python scripts/torch_names.py            # the markdown table (the README holds its output)
    python scripts/torch_names.py --check    # also list tracked names that torch itself lacks

The names tracked are those a research-scale model reaches for (the official PyTorch examples,
tutorials and the breadth issue's lists), per namespace; the table counts the ones gpuad has and
names the ones it lacks. tests/test_readme.py keeps the README's copy equal to this output.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gpuad

import gpuad  # noqa: E402

TRACKED = {
    "torch": """
        tensor as_tensor from_numpy zeros ones full empty zeros_like ones_like full_like empty_like
        arange linspace logspace eye rand randn randint rand_like randn_like randint_like randperm
        multinomial normal bernoulli poisson manual_seed Generator get_rng_state set_rng_state
        is_tensor numel cat concat stack hstack vstack dstack column_stack split chunk
        tensor_split unbind reshape flatten unflatten squeeze unsqueeze permute transpose movedim
        narrow flip roll rot90 repeat_interleave tile gather scatter scatter_add scatter_reduce
        index_select index_add index_copy index_fill index_put masked_select masked_fill where
        nonzero argwhere take_along_dim meshgrid tril triu tril_indices triu_indices diag
        diagonal diag_embed trace atleast_1d atleast_2d atleast_3d broadcast_to
        add sub mul div true_divide floor_divide remainder fmod pow exp exp2 expm1 log log2 log10
        log1p sqrt rsqrt square reciprocal abs neg sign sgn sin cos tan asin acos atan atan2 sinh
        cosh tanh asinh acosh atanh sigmoid logit erf erfc erfinv lgamma digamma sinc floor ceil
        round trunc frac clamp clamp_min clamp_max clip lerp addcmul addcdiv hypot copysign
        logaddexp logaddexp2 xlogy heaviside nan_to_num deg2rad rad2deg maximum minimum fmax fmin
        softmax log_softmax relu
        eq ne lt le gt ge isclose allclose equal isnan isinf isfinite logical_and logical_or
        logical_not logical_xor bitwise_and bitwise_or bitwise_xor bitwise_not
        bitwise_left_shift bitwise_right_shift
        sum mean prod std var std_mean var_mean amax amin max min argmax argmin aminmax norm
        logsumexp cumsum cumprod cummax cummin logcumsumexp sort argsort topk kthvalue median
        quantile nansum nanmean count_nonzero unique bincount histc all any
        matmul mm bmm mv dot outer einsum tensordot kron cross cdist addmm addmv baddbmm
        no_grad enable_grad set_grad_enabled is_grad_enabled inference_mode
        is_inference_mode_enabled compile autocast save load from_dlpack finfo iinfo
        get_default_dtype set_default_dtype promote_types result_type can_cast is_floating_point
        set_printoptions
        float32 float64 float16 bfloat16 int8 int16 int32 int64 uint8 bool float double half
        long int short device dtype pi e inf nan""",
    "Tensor": """
        backward detach clone to cpu cuda numpy item tolist size dim numel shape dtype device
        requires_grad_ grad is_leaf grad_fn retain_grad register_hook data type type_as float
        double half long int bool is_cuda is_cpu contiguous view view_as reshape reshape_as
        expand expand_as repeat flatten squeeze unsqueeze permute transpose t T mT narrow split
        chunk unbind flip roll gather scatter scatter_add index_select index_add masked_fill
        masked_select new_zeros new_ones new_full new_tensor new_empty zero_ fill_ copy_ add_
        sub_ mul_ div_ normal_ uniform_ bernoulli_ exponential_ clamp_ sum mean std var max min
        amax amin argmax argmin prod cumsum cumprod sort argsort topk norm softmax log_softmax
        exp log sqrt abs pow sigmoid tanh relu matmul mm bmm mv dot outer eq ne lt le gt ge
        isnan any all where element_size itemsize nbytes masked_fill_ relu_ sigmoid_ tanh_ exp_
        log_ sqrt_ abs_ neg_ pow_ is_floating_point is_contiguous stride nelement ndimension
        get_device select ravel byte short char unfold""",
    "nn": """
        Module Parameter ParameterList ParameterDict Sequential ModuleList ModuleDict Linear
        Bilinear Identity Flatten
        Unflatten Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d MaxPool1d MaxPool2d
        AvgPool1d AvgPool2d AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveMaxPool1d
        AdaptiveMaxPool2d BatchNorm1d BatchNorm2d LayerNorm GroupNorm RMSNorm InstanceNorm1d
        InstanceNorm2d LocalResponseNorm Dropout Dropout1d Dropout2d AlphaDropout Embedding
        EmbeddingBag PixelShuffle PixelUnshuffle Upsample ZeroPad2d ConstantPad1d ConstantPad2d
        ReflectionPad1d ReflectionPad2d ReplicationPad1d ReplicationPad2d Unfold Fold
        ReLU ReLU6 LeakyReLU PReLU RReLU ELU SELU CELU GELU SiLU Mish Sigmoid Tanh Hardtanh
        Hardsigmoid Hardswish Softplus Softsign Softshrink Hardshrink Tanhshrink Threshold
        LogSigmoid Softmax LogSoftmax Softmin GLU
        MSELoss L1Loss SmoothL1Loss HuberLoss CrossEntropyLoss NLLLoss BCELoss BCEWithLogitsLoss
        KLDivLoss PoissonNLLLoss GaussianNLLLoss CosineEmbeddingLoss MarginRankingLoss
        HingeEmbeddingLoss SoftMarginLoss MultiLabelSoftMarginLoss MultiMarginLoss
        TripletMarginLoss CTCLoss
        RNN LSTM GRU RNNCell LSTMCell GRUCell MultiheadAttention TransformerEncoderLayer
        TransformerEncoder TransformerDecoderLayer TransformerDecoder Transformer""",
    "nn.functional": """
        linear bilinear conv1d conv2d conv3d conv_transpose1d conv_transpose2d max_pool1d
        max_pool2d avg_pool1d avg_pool2d adaptive_avg_pool1d adaptive_avg_pool2d
        adaptive_max_pool1d adaptive_max_pool2d batch_norm layer_norm group_norm instance_norm
        rms_norm local_response_norm dropout dropout1d dropout2d alpha_dropout embedding
        embedding_bag one_hot pad interpolate grid_sample affine_grid pixel_shuffle
        pixel_unshuffle unfold fold normalize cosine_similarity pairwise_distance
        scaled_dot_product_attention relu relu6 leaky_relu prelu rrelu elu selu celu gelu silu
        mish sigmoid tanh hardtanh hardsigmoid hardswish softplus softsign softshrink hardshrink
        tanhshrink threshold logsigmoid softmax log_softmax softmin glu gumbel_softmax
        mse_loss l1_loss smooth_l1_loss huber_loss cross_entropy nll_loss binary_cross_entropy
        binary_cross_entropy_with_logits kl_div poisson_nll_loss gaussian_nll_loss
        cosine_embedding_loss margin_ranking_loss hinge_embedding_loss soft_margin_loss
        multilabel_soft_margin_loss multi_margin_loss triplet_margin_loss ctc_loss""",
    "nn.init": """
        uniform_ normal_ trunc_normal_ constant_ ones_ zeros_ eye_ dirac_ xavier_uniform_
        xavier_normal_ kaiming_uniform_ kaiming_normal_ orthogonal_ sparse_ calculate_gain""",
    "nn.utils": """
        clip_grad_norm_ clip_grad_value_ parameters_to_vector vector_to_parameters rnn
        parametrizations""",
    "linalg": """
        norm vector_norm matrix_norm inv solve solve_triangular det slogdet cholesky qr svd
        svdvals eigh eigvalsh pinv lstsq matrix_power matrix_exp cross""",
    "optim": """
        SGD Adam AdamW RMSprop Adagrad Adadelta Adamax NAdam RAdam ASGD LBFGS Optimizer""",
    "optim.lr_scheduler": """
        StepLR MultiStepLR ExponentialLR CosineAnnealingLR LambdaLR LinearLR SequentialLR
        OneCycleLR ReduceLROnPlateau CyclicLR PolynomialLR CosineAnnealingWarmRestarts ConstantLR
        ChainedScheduler""",
    "utils.data": """
        Dataset TensorDataset DataLoader DistributedSampler Subset ConcatDataset random_split""",
    "distributions": """
        Normal LogNormal Laplace Uniform Bernoulli Categorical OneHotCategorical
        MultivariateNormal Independent Beta Gamma Dirichlet kl_divergence""",
    "func": """
        grad grad_and_value vjp jvp jacrev jacfwd hessian vmap functional_call""",
    "accelerator": """
        is_available current_accelerator device_count current_device_index set_device_index
        synchronize""",
    "cuda": """
        is_available device_count current_device set_device get_device_name
        get_device_capability get_device_properties synchronize manual_seed manual_seed_all
        memory_allocated memory_reserved memory_stats max_memory_allocated
        reset_peak_memory_stats empty_cache mem_get_info Event""",
}
# Where gpuad keeps what torch keeps elsewhere.
GPUAD_HOME = {"Tensor": "Tensor", "utils.data": "data"}


def _gpuad_namespace(space):
    obj = gpuad
    for part in GPUAD_HOME.get(space, "" if space == "torch" else space).split("."):
        if part:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
    return obj


def _has(obj, name):
    try:
        return obj is not None and hasattr(obj, name)
    except Exception:  # a property that needs an instance
        return False


def table():
    """The markdown table: per namespace, how many tracked names gpuad has, and the others."""
    lines = ["| PyTorch namespace | gpuad has | missing |", "|---|---|---|"]
    for space, names in TRACKED.items():
        names = names.split()
        home = _gpuad_namespace(space)
        missing = [n for n in names if not _has(home, n)]
        shown = ", ".join(f"`{n}`" for n in missing) if missing else "none"
        label = "torch" if space == "torch" else f"torch.{space}"
        lines.append(f"| `{label}` | {len(names) - len(missing)} of {len(names)} | {shown} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="also list tracked names that the installed torch lacks")
    args = parser.parse_args(argv)
    print(table())
    if args.check:
        import torch
        for space, names in TRACKED.items():
            home = torch.Tensor if space == "Tensor" else torch
            for part in ("" if space in ("torch", "Tensor") else space).split("."):
                home = getattr(home, part) if part else home
            for name in names.split():
                if not _has(home, name):
                    print(f"torch.{space}.{name} does not exist in torch {torch.__version__}")


if __name__ == "__main__":
    main()
