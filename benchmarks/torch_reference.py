"""A plain-PyTorch SimSiam step with the same network as `keras_ssl_lt` (the speed reference).

CIFAR ResNet (3x3 stride-1 stem, basic blocks, strides 1/2/2/2, global average pooling; widths 64..512 times
`width`, as `keras_ssl_lt.backbones.resnet18_cifar(width=...)`), SimSiam projector `D -> H (BN, ReLU) -> P (BN,
no affine)` and predictor `P -> Q (BN, ReLU) -> P`, symmetric negative cosine with stop-gradient, SGD with
momentum and weight decay. Optionally channels-last memory format and bf16 autocast; on a GPU
`torch.backends.cudnn.benchmark` is on (fixed shapes).

Two kinds of input, both timed as part of the step:

- `augment=False`: two fixed, already-normalised float views (no augmentation at all; the ceiling);
- `augment=True`: a batch of real uint8 images on the device, turned into two views per step by `augment_views`,
  a plain-PyTorch, per-example version of the SimSiam CIFAR views (random resized crop with scale 0.2-1 and
  ratio 3/4-4/3 through one `affine_grid`/`grid_sample`, horizontal flip, colour jitter 0.4/0.4/0.4/0.1 with
  p = 0.8 in a fixed order, grayscale p = 0.2, CIFAR-10 normalisation). It is what a PyTorch user would write to
  keep augmentation on the GPU; it differs from `keras_ssl_lt.augment.simsiam_cifar` in three stated ways:
  bilinear sampling without antialiasing, crop sizes clamped instead of torchvision's rejection loop, and the
  jitter order fixed instead of drawn per example.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
GRAY = (0.2989, 0.587, 0.114)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class CifarResNet(nn.Module):
    def __init__(self, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for w, n, s in zip(widths, blocks, (1, 2, 2, 2), strict=True):
            for b in range(n):
                layers.append(BasicBlock(cin, w, s if b == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.dim = cin

    def forward(self, x):
        return self.layers(self.stem(x)).mean(dim=(2, 3))


def encoder(name, width=1.0):
    """The CIFAR ResNet named as in `keras_ssl_lt.backbones` (`resnet18_cifar` or `small_resnet`)."""

    def ch(c):
        return max(1, round(c * width))

    if name == "resnet18_cifar":
        return CifarResNet(tuple(ch(c) for c in (64, 128, 256, 512)), (2, 2, 2, 2))
    if name == "small_resnet":
        return CifarResNet(tuple(ch(c) for c in (16, 32, 64, 128)), (1, 1, 1, 1))
    raise ValueError(f"`name` must be 'resnet18_cifar' or 'small_resnet'; got {name!r}")


class SimSiam(nn.Module):
    def __init__(self, backbone, proj=2048, pred_hidden=512, width=1.0):
        super().__init__()
        self.encoder = encoder(backbone, width)
        d = self.encoder.dim
        self.projector = nn.Sequential(
            nn.Linear(d, proj, bias=False),
            nn.BatchNorm1d(proj),
            nn.ReLU(),
            nn.Linear(proj, proj, bias=False),
            nn.BatchNorm1d(proj, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(proj, pred_hidden, bias=False),
            nn.BatchNorm1d(pred_hidden),
            nn.ReLU(),
            nn.Linear(pred_hidden, proj),
        )

    def loss(self, x1, x2):
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return -0.5 * (F.cosine_similarity(p1, z2.detach()).mean() + F.cosine_similarity(p2, z1.detach()).mean())


# ---------------------------------------------------------------------------------------------- augmentation
def _rgb_to_hsv(x):
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = delta / maxc.clamp_min(1e-8)
    d = delta.clamp_min(1e-8)
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def _hsv_to_rgb(x):
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = torch.stack(
        [
            torch.stack([v, q, p, p, t, v], 1),
            torch.stack([t, v, v, q, p, p], 1),
            torch.stack([p, p, t, v, v, q], 1),
        ],
        1,
    )  # (B, 3, 6, H, W)
    return torch.gather(choices, 2, i[:, None, None].expand(-1, 3, 1, -1, -1)).squeeze(2)


def augment_views(
    images_u8,
    generator=None,
    size=32,
    scale=(0.2, 1.0),
    ratio=(3 / 4, 4 / 3),
    jitter=(0.4, 0.4, 0.4, 0.1),
    jitter_p=0.8,
    gray_p=0.2,
):
    """One random SimSiam CIFAR view per image, per-example parameters, all on the images' device.

    `images_u8`: uint8 (B, H, W, 3). Returns normalised float32 (B, 3, size, size).
    """
    dev = images_u8.device
    b = images_u8.shape[0]

    def u(lo=0.0, hi=1.0, shape=(b,)):
        return torch.rand(shape, device=dev, generator=generator) * (hi - lo) + lo

    x = images_u8.permute(0, 3, 1, 2).float() / 255.0
    area = u(*scale)
    logr = u(math.log(ratio[0]), math.log(ratio[1]))
    w = torch.sqrt(area * torch.exp(logr)).clamp(max=1.0)  # crop side as a fraction of the image side
    h = torch.sqrt(area / torch.exp(logr)).clamp(max=1.0)
    cx = (u() * 2 - 1) * (1 - w)
    cy = (u() * 2 - 1) * (1 - h)
    flip = torch.where(u() < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    gray_w = torch.tensor(GRAY, device=dev).view(1, 3, 1, 1)
    bri, con, sat, hue = jitter
    y = x
    f = u(1 - bri, 1 + bri).view(b, 1, 1, 1)
    y = (y * f).clamp(0, 1)
    f = u(1 - con, 1 + con).view(b, 1, 1, 1)
    mean = (y * gray_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    y = (f * y + (1 - f) * mean).clamp(0, 1)
    f = u(1 - sat, 1 + sat).view(b, 1, 1, 1)
    y = (f * y + (1 - f) * (y * gray_w).sum(1, keepdim=True)).clamp(0, 1)
    hsv = _rgb_to_hsv(y)
    hsv = torch.cat([(hsv[:, :1] + u(-hue, hue).view(b, 1, 1, 1)) % 1.0, hsv[:, 1:]], 1)
    y = _hsv_to_rgb(hsv)
    x = torch.where((u() < jitter_p).view(b, 1, 1, 1), y, x)
    gray = (x * gray_w).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    x = torch.where((u() < gray_p).view(b, 1, 1, 1), gray, x)
    mean = torch.tensor(CIFAR10_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=dev).view(1, 3, 1, 1)
    return (x - mean) / std


# ---------------------------------------------------------------------------------------------- the step
def make_step(
    backbone,
    batch_size,
    proj=2048,
    pred_hidden=512,
    bf16=False,
    channels_last=False,
    device="cpu",
    lr=0.06,
    width=1.0,
    images=None,
    augment=False,
    seed=0,
):
    """Returns `(step, sync)`: `step()` runs one SimSiam SGD step, `sync()` waits for the device.

    With `augment=True`, `images` (uint8 (N, H, W, 3), N a multiple of `batch_size`, numpy or tensor) are put
    on the device once and each step takes the next batch of them and augments it there; else two fixed
    random views are used.
    """
    torch.manual_seed(seed)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels, as users do
    model = SimSiam(backbone, proj, pred_hidden, width).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator(device=device).manual_seed(seed)
    dev_type = device.split(":")[0]
    if augment:
        if images is None:
            raise ValueError("`images` are required with augment=True")
        data = torch.as_tensor(images).to(device)
        if data.dtype != torch.uint8 or data.ndim != 4 or len(data) < batch_size:
            raise ValueError(f"`images` must be uint8 (N >= batch_size, H, W, 3); got {tuple(data.shape)} {data.dtype}")
        n_batches = len(data) // batch_size
        state = {"i": 0}

        def views():
            s = (state["i"] % n_batches) * batch_size
            state["i"] += 1
            batch = data[s : s + batch_size]
            return (
                augment_views(batch, gen).contiguous(memory_format=fmt),
                augment_views(batch, gen).contiguous(memory_format=fmt),
            )
    else:
        g = torch.Generator().manual_seed(seed)
        x1 = torch.randn(batch_size, 3, 32, 32, generator=g).to(device).contiguous(memory_format=fmt)
        x2 = torch.randn(batch_size, 3, 32, 32, generator=g).to(device).contiguous(memory_format=fmt)

        def views():
            return x1, x2

    def step():
        opt.zero_grad(set_to_none=True)
        v1, v2 = views()
        with torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(v1, v2)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev_type == "cuda":
            torch.cuda.synchronize()

    return step, sync
