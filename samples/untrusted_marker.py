"""Restricted-Mode canary for the editor tests (client/e2e): building this model writes a marker
file, so the file existing proves that code from the workspace ran. The file is
$SHAPELENS_UNTRUSTED_MARKER if set (the e2e test sets a fresh path per run), else
shapelens-untrusted-marker.txt in the system temp dir (tempfile.gettempdir()).

A trusted probe runs `MarkerModel.__init__` and the marker appears; in an untrusted workspace
(VS Code's Restricted Mode) shapelens must run no user code, so the marker must never appear.
The model itself is correct: `shapelens check` reports nothing here.
"""

import torch
import torch.nn as nn


class MarkerModel(nn.Module):
    def __init__(self, width):
        super().__init__()
        import os
        import tempfile

        marker = os.environ.get("SHAPELENS_UNTRUSTED_MARKER") or os.path.join(
            tempfile.gettempdir(), "shapelens-untrusted-marker.txt")
        with open(marker, "w", encoding="utf-8") as f:
            f.write(f"MarkerModel.__init__ ran in process {os.getpid()}\n")
        self.fc = nn.Linear(width, width)

    def forward(self, features):
        return self.fc(features)


model = MarkerModel(16)
features = torch.zeros(2, 16)
hidden = model(features)
