"""A torchvision bottleneck ResNet whose depth and channel widths come from the spec.

With the defaults it is exactly `torchvision.models.resnet50(weights=None)` (same modules, same state_dict
keys and shapes), which is what MedCLIP and GLoRIA build before loading their checkpoints. Tiny variants
pass fewer blocks and narrower widths and keep the same key layout (`conv1`, `bn1`, `layer1.0.conv1`, ...,
`layerN.0.downsample.0`), so the loaders and LoRA targets are exercised on the same code path.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET50_WIDTHS = (64, 128, 256, 512)


class BottleneckResNet(ResNet):
    """`torchvision.models.ResNet` with configurable stem width, block counts and stage widths.

    Stage `i` outputs `widths[i] * 4` channels (the bottleneck expansion). `fc` is `nn.Identity()`; the
    families put their own projection on top.
    """

    def __init__(
        self,
        blocks: Sequence[int] = RESNET50_BLOCKS,
        widths: Sequence[int] = RESNET50_WIDTHS,
        stem_width: int = 64,
    ):
        if len(blocks) != 4 or len(widths) != 4:
            raise ValueError(f"a ResNet has 4 stages; got blocks={list(blocks)} widths={list(widths)}")
        nn.Module.__init__(self)
        # The attributes torchvision's ResNet.__init__ sets, with our widths; forward() is torchvision's.
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = stem_width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(Bottleneck, widths[0], blocks[0])
        self.layer2 = self._make_layer(Bottleneck, widths[1], blocks[1], stride=2)
        self.layer3 = self._make_layer(Bottleneck, widths[2], blocks[2], stride=2)
        self.layer4 = self._make_layer(Bottleneck, widths[3], blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    @property
    def layer3_channels(self) -> int:
        return self.layer3[-1].conv3.out_channels

    @property
    def feature_channels(self) -> int:
        """Channels of the pooled layer4 output (2048 for ResNet-50)."""
        return self.layer4[-1].conv3.out_channels

    def layer3_and_pooled(self, images):
        """(layer3 feature map [B, C3, h, w], pooled layer4 features [B, C4]) — GLoRIA's local and global."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer2(self.layer1(x))
        local = self.layer3(x)
        pooled = self.avgpool(self.layer4(local)).flatten(1)
        return local, pooled
