"""An independent plain-PyTorch implementation of the package's methods and step, for trajectory parity.

Nothing here imports `keras_ssl_lt` or Keras: the models, losses, the SAM / ASAM / rwSAM step and the optimizer
are written from the papers in plain PyTorch, as a PyTorch user would (the SAM step follows davda54/sam's
two-pass structure). The only link to the package is `load_keras_weights` / `keras_values`, which read values
by the package's layer names, so both sides can start from the same weights and be compared weight for weight.

- `ResNet`: the CIFAR ResNet of `keras_ssl_lt.backbones.small_resnet` / `resnet18_cifar` (3x3 stem, basic blocks,
  strides 1/2/2/2, global average pooling), its modules named as the Keras layers;
- `SimSiam`, `SimCLR`, `Supervised`: per-example losses of a batch of pre-made views (NCHW float);
- `sgd(...)`: `torch.optim.SGD` with a per-step schedule (any `lr(step)` function);
- `train_step(...)`: one step, plain or SAM-type (`rho`, `adaptive`, example `weights` for rwSAM), with the
  BatchNorm moving statistics of the first pass kept (the package's `bn_update="first"`).

Torch's defaults (`nn.Conv2d`, `nn.Linear`, `nn.BatchNorm` with momentum 0.1 and eps 1e-5) are kept, so a model
built here and not loaded from Keras starts as a PyTorch user's would.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ResNet",
    "SimCLR",
    "SimSiam",
    "Supervised",
    "keras_values",
    "load_keras_weights",
    "sgd",
    "torch_values",
    "train_step",
]


# ---------------------------------------------------------------------------------------------- networks
class ResNet(nn.Module):
    """CIFAR ResNet with basic blocks; `widths` per stage, `blocks` per stage, modules named like the Keras layers."""

    def __init__(self, widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1)):
        super().__init__()
        self.convs = nn.ModuleDict()
        self.bns = nn.ModuleDict()
        self.plan = []  # (block name, stride, has downsample)
        self._conv_bn("stem", 3, widths[0], 3, 1)
        cin = widths[0]
        for s, (w, n, stride) in enumerate(zip(widths, blocks, (1, 2, 2, 2), strict=True), start=1):
            for b in range(1, n + 1):
                name, st = f"stage{s}_block{b}", stride if b == 1 else 1
                self._conv_bn(f"{name}_conv1", cin, w, 3, st, bn=f"{name}_bn1")
                self._conv_bn(f"{name}_conv2", w, w, 3, 1, bn=f"{name}_bn2")
                down = st != 1 or cin != w
                if down:
                    self._conv_bn(f"{name}_down_conv", cin, w, 1, st, bn=f"{name}_down_bn")
                self.plan.append((name, st, down))
                cin = w
        self.dim = cin

    def _conv_bn(self, name, cin, cout, k, stride, bn=None):
        conv = "stem_conv" if name == "stem" else name
        self.convs[conv] = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bns[bn or "stem_bn"] = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(self.bns["stem_bn"](self.convs["stem_conv"](x)))
        for name, _, down in self.plan:
            y = F.relu(self.bns[f"{name}_bn1"](self.convs[f"{name}_conv1"](x)))
            y = self.bns[f"{name}_bn2"](self.convs[f"{name}_conv2"](y))
            if down:
                x = self.bns[f"{name}_down_bn"](self.convs[f"{name}_down_conv"](x))
            x = F.relu(y + x)
        return x.mean(dim=(2, 3))


def resnet(name, width=1.0):
    """`small_resnet` (16..128, one block per stage) or `resnet18_cifar` (64..512, two), channels times `width`."""
    base, blocks = {
        "small_resnet": ((16, 32, 64, 128), (1, 1, 1, 1)),
        "resnet18_cifar": ((64, 128, 256, 512), (2,) * 4),
    }[name]
    return ResNet(tuple(max(1, round(c * width)) for c in base), blocks)


class MLP(nn.Module):
    """`[Linear (no bias) -> BN -> ReLU] * hidden -> Linear [-> BN]`, modules named like `mlp_head`'s layers."""

    def __init__(self, dims, last_bn=False, last_affine=True, batch_norm=True):
        super().__init__()
        self.layers = nn.ModuleDict()
        self.hidden = len(dims) - 2
        for i in range(self.hidden):
            self.layers[f"dense_{i}"] = nn.Linear(dims[i], dims[i + 1], bias=not batch_norm)
            if batch_norm:
                self.layers[f"bn_{i}"] = nn.BatchNorm1d(dims[i + 1])
        self.layers["dense_out"] = nn.Linear(dims[-2], dims[-1], bias=not last_bn)
        if last_bn:
            self.layers["bn_out"] = nn.BatchNorm1d(dims[-1], affine=last_affine)

    def forward(self, x):
        for i in range(self.hidden):
            x = self.layers[f"dense_{i}"](x)
            if f"bn_{i}" in self.layers:
                x = self.layers[f"bn_{i}"](x)
            x = F.relu(x)
        x = self.layers["dense_out"](x)
        return self.layers["bn_out"](x) if "bn_out" in self.layers else x


class SimSiam(nn.Module):
    """SimSiam (Chen & He 2021): `0.5 * (-cos(p1, sg(z2)) - cos(p2, sg(z1)))` per example."""

    def __init__(self, encoder, proj=2048, proj_hidden=2048, pred_hidden=512, projector_layers=2):
        super().__init__()
        self.encoder = encoder
        dims = [encoder.dim] + [proj_hidden] * (projector_layers - 1) + [proj]
        self.heads = nn.ModuleDict(
            {"projector": MLP(dims, last_bn=True, last_affine=False), "predictor": MLP([proj, pred_hidden, proj])}
        )

    def forward(self, views, labels=None):
        z1, z2 = (self.heads["projector"](self.encoder(v)) for v in views)
        p1, p2 = self.heads["predictor"](z1), self.heads["predictor"](z2)
        return -0.5 * (F.cosine_similarity(p1, z2.detach(), eps=1e-8) + F.cosine_similarity(p2, z1.detach(), eps=1e-8))


class SimCLR(nn.Module):
    """SimCLR (Chen et al. 2020): NT-Xent over the 2B views; each example's loss averages its two anchors."""

    def __init__(self, encoder, proj=128, proj_hidden=2048, temperature=0.5):
        super().__init__()
        self.encoder = encoder
        self.temperature = temperature
        self.heads = nn.ModuleDict({"projector": MLP([encoder.dim, proj_hidden, proj])})

    def forward(self, views, labels=None):
        z = torch.cat([self.heads["projector"](self.encoder(v)) for v in views])
        z = F.normalize(z, dim=1)
        b = len(z) // 2
        logits = z @ z.T / self.temperature
        logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
        target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
        per_anchor = F.cross_entropy(logits, target, reduction="none")
        return 0.5 * (per_anchor[:b] + per_anchor[b:])


class Supervised(nn.Module):
    """Cross-entropy of a linear head on the encoder's features (one view)."""

    def __init__(self, encoder, num_classes):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict({"head": nn.ModuleDict({"logits": nn.Linear(encoder.dim, num_classes)})})

    def forward(self, views, labels):
        (x,) = views
        return F.cross_entropy(self.heads["head"]["logits"](self.encoder(x)), labels, reduction="none")


# ---------------------------------------------------------------------------------------------- weights
def _torch_params(model):
    """`{(part, layer, kind): tensor}` of every parameter and BatchNorm statistic, named as the Keras layers."""
    out = {}
    parts = [("encoder", model.encoder)] + [(k, v) for k, v in model.heads.items()]
    for part, module in parts:
        for name, sub in module.named_modules():
            layer = name.split(".")[-1]
            if isinstance(sub, (nn.Conv2d, nn.Linear)):
                out[(part, layer, "kernel")] = sub.weight
                if sub.bias is not None:
                    out[(part, layer, "bias")] = sub.bias
            elif isinstance(sub, nn.modules.batchnorm._BatchNorm):
                if sub.affine:
                    out[(part, layer, "gamma")] = sub.weight
                    out[(part, layer, "beta")] = sub.bias
                out[(part, layer, "moving_mean")] = sub.running_mean
                out[(part, layer, "moving_variance")] = sub.running_var
    return out


def _keras_layers(keras_model):
    """`{(part, layer, kind): keras variable}` of a keras_ssl_lt pre-trainer (encoder and heads)."""
    out = {}
    parts = [("encoder", keras_model.encoder)]
    for part in ("projector", "predictor", "head"):
        if hasattr(keras_model, part):
            parts.append((part, getattr(keras_model, part)))
    for part, model in parts:
        for layer in model.layers:
            for v in layer.weights:
                out[(part, layer.name, v.name)] = v
    return out


def _to_torch_layout(value, kind, ndim):
    if kind == "kernel" and ndim == 4:
        return np.transpose(value, (3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
    if kind == "kernel" and ndim == 2:
        return value.T  # (in, out) -> (out, in)
    return value


def _matched(model, keras_model):
    ours, theirs = _torch_params(model), _keras_layers(keras_model)
    if set(ours) != set(theirs):
        missing, extra = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
        raise ValueError(
            f"the reference and the Keras model differ in their layers: only in Keras {missing[:6]}, only in the "
            f"reference {extra[:6]}; build the reference with the same architecture and sizes"
        )
    return ours, theirs


def load_keras_weights(model, keras_model):
    """Copies every weight and BatchNorm statistic of the Keras pre-trainer into `model` (shapes checked)."""
    import keras

    ours, theirs = _matched(model, keras_model)
    with torch.no_grad():
        for key, t in ours.items():
            v = np.asarray(keras.ops.convert_to_numpy(theirs[key]))
            v = _to_torch_layout(v, key[2], v.ndim)
            if tuple(v.shape) != tuple(t.shape):
                raise ValueError(f"shape mismatch at {key}: Keras {v.shape} vs reference {tuple(t.shape)}")
            t.copy_(torch.from_numpy(np.ascontiguousarray(v)))
    return model


def torch_values(model):
    """`{(part, layer, kind): numpy array}` of the reference, in the Keras layout (for comparisons)."""
    out = {}
    for key, t in _torch_params(model).items():
        r = t.detach().numpy().copy()
        if key[2] == "kernel" and r.ndim == 4:
            r = np.transpose(r, (2, 3, 1, 0))
        elif key[2] == "kernel" and r.ndim == 2:
            r = r.T
        out[key] = r
    return out


def keras_values(keras_model):
    """`{(part, layer, kind): numpy array}` of a keras_ssl_lt pre-trainer (same keys as `torch_values`)."""
    import keras

    return {k: np.array(keras.ops.convert_to_numpy(v.value)) for k, v in _keras_layers(keras_model).items()}


# ---------------------------------------------------------------------------------------------- training
def cosine_lr(base_lr, total_steps):
    """Keras' `CosineDecay(base_lr, total_steps)` (alpha 0, no warm-up): `lr(step)` per optimizer step."""

    def lr(step):
        t = min(step, total_steps) / total_steps
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))

    return lr


def sgd(model, lr, momentum=0.9, weight_decay=5e-4, nesterov=False):
    """`torch.optim.SGD` (coupled weight decay) with `lr(step)` applied before every step by `train_step`."""
    opt = torch.optim.SGD(model.parameters(), lr=lr(0), momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    opt.schedule = lr
    opt.steps = 0
    return opt


def _bn_modules(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def train_step(model, opt, views, labels=None, rho=0.0, adaptive=False, weights=None, eps=1e-12):
    """One training step on pre-made `views` (list of NCHW float tensors); returns the plain mean loss.

    `rho > 0` makes it a SAM step (davda54/sam's two passes): gradient of the ascent loss (the mean of
    `weights * per-example loss` with `weights`, for rwSAM; else the mean loss), `e = rho * s^2 g / ||s g||`
    with `s = |w|` (ASAM, `adaptive=True`) or 1 (SAM) over all parameters together, the gradient of the plain
    mean loss at `w + e`, `w` restored, then the optimizer step. The BatchNorm statistics of the second pass
    are discarded (the package's `bn_update="first"`).
    """
    for group in opt.param_groups:
        group["lr"] = opt.schedule(opt.steps)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    opt.zero_grad(set_to_none=True)
    per_example = model(views, labels)
    loss = per_example.mean()
    ascent = loss if weights is None else (per_example * weights).mean()
    ascent.backward()
    if rho > 0:
        bns = _bn_modules(model)
        saved_stats = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in bns]
        with torch.no_grad():
            saved = [p.detach().clone() for p in params]
            scaled = [(p.abs() * p.grad if adaptive else p.grad) for p in params]
            norm = torch.sqrt(sum((s * s).sum() for s in scaled))
            scale = rho / (norm + eps)
            for p in params:
                p.add_((p * p * p.grad if adaptive else p.grad) * scale)
        opt.zero_grad(set_to_none=True)
        model(views, labels).mean().backward()
        with torch.no_grad():
            for p, w in zip(params, saved, strict=True):
                p.copy_(w)
            for m, (mean, var, n) in zip(bns, saved_stats, strict=True):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(n)
    opt.step()
    opt.steps += 1
    return float(loss.detach())
