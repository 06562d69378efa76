"""A plain-PyTorch SimSiam step with the same network as `keras_ssl_lt` (the speed reference).

CIFAR ResNet (3x3 stride-1 stem, basic blocks, strides 1/2/2/2, global average pooling), SimSiam
projector `D -> H (BN, ReLU) -> P (BN, no affine)` and predictor `P -> Q (BN, ReLU) -> P`, symmetric
negative cosine with stop-gradient, SGD with momentum and weight decay. Optionally channels-last
memory format and bf16 autocast. Input: already-augmented float views (no augmentation is timed).
"""

import torch
from torch import nn
import torch.nn.functional as F


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
        for w, n, s in zip(widths, blocks, (1, 2, 2, 2)):
            for b in range(n):
                layers.append(BasicBlock(cin, w, s if b == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.dim = cin

    def forward(self, x):
        return self.layers(self.stem(x)).mean(dim=(2, 3))


def encoder(name):
    if name == "resnet18_cifar":
        return CifarResNet((64, 128, 256, 512), (2, 2, 2, 2))
    if name == "small_resnet":
        return CifarResNet((16, 32, 64, 128), (1, 1, 1, 1))
    raise ValueError(f"unknown backbone {name!r}")


class SimSiam(nn.Module):
    def __init__(self, backbone, proj=2048, pred_hidden=512):
        super().__init__()
        self.encoder = encoder(backbone)
        d = self.encoder.dim
        self.projector = nn.Sequential(
            nn.Linear(d, proj, bias=False), nn.BatchNorm1d(proj), nn.ReLU(),
            nn.Linear(proj, proj, bias=False), nn.BatchNorm1d(proj, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(proj, pred_hidden, bias=False), nn.BatchNorm1d(pred_hidden), nn.ReLU(),
            nn.Linear(pred_hidden, proj),
        )

    def loss(self, x1, x2):
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return -0.5 * (F.cosine_similarity(p1, z2.detach()).mean() + F.cosine_similarity(p2, z1.detach()).mean())


def make_step(backbone, batch_size, proj=2048, pred_hidden=512, bf16=False, channels_last=False,
              device="cpu", lr=0.06):
    """Returns `step()` running one SimSiam SGD step on fixed random views."""
    model = SimSiam(backbone, proj, pred_hidden).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(batch_size, 3, 32, 32, generator=g).to(device).to(memory_format=fmt)
    x2 = torch.randn(batch_size, 3, 32, 32, generator=g).to(device).to(memory_format=fmt)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(x1, x2)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return step, sync
