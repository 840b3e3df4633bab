"""Keyword spotting on raw audio (M5-style 1-D convnet), plus a spectrogram front end with
instance and group normalisation and a 3-D conv stem for clips of spectrograms."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class M5(nn.Module):
    def __init__(self, n_input=1, n_output=35, stride=16, n_channel=32):
        super().__init__()
        self.conv1 = nn.Conv1d(n_input, n_channel, kernel_size=80, stride=stride)
        self.bn1 = nn.BatchNorm1d(n_channel)
        self.pool1 = nn.MaxPool1d(4)
        self.conv2 = nn.Conv1d(n_channel, n_channel, kernel_size=3)
        self.bn2 = nn.BatchNorm1d(n_channel)
        self.pool2 = nn.MaxPool1d(4)
        self.conv3 = nn.Conv1d(n_channel, 2 * n_channel, kernel_size=3)
        self.bn3 = nn.BatchNorm1d(2 * n_channel)
        self.pool3 = nn.MaxPool1d(4)
        self.fc1 = nn.Linear(2 * n_channel, n_output)

    def forward(self, x):
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool2(F.relu(self.bn2(self.conv2(x))))
        x = self.pool3(F.relu(self.bn3(self.conv3(x))))
        x = F.avg_pool1d(x, x.shape[-1])
        x = x.permute(0, 2, 1)
        x = self.fc1(x)
        return F.log_softmax(x, dim=2)


class SpectrogramNet(nn.Module):
    def __init__(self, n_mels=64, n_classes=35):
        super().__init__()
        self.norm_in = nn.InstanceNorm2d(1, affine=True)
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.gn1 = nn.GroupNorm(8, 32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, groups=2)
        self.gn2 = nn.GroupNorm(8, 64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(64, n_classes)

    def forward(self, spec):
        x = self.norm_in(spec)
        x = F.gelu(self.gn1(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = F.gelu(self.gn2(self.conv2(x)))
        x = self.pool(x).flatten(1)
        return self.out(x)


class ClipStem(nn.Module):
    def __init__(self, in_channels=1, width=16):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, width, kernel_size=(3, 3, 3), padding=1)
        self.bn = nn.BatchNorm3d(width)
        self.norm = nn.InstanceNorm3d(width)
        self.proj = nn.Conv3d(width, 2 * width, kernel_size=1)

    def forward(self, clip):
        return self.proj(self.norm(F.relu(self.bn(self.conv(clip)))))
