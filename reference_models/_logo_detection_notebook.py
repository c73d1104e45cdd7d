"""Cells of the logo-detection notebook, in percent format: read as text, never imported.

`reference_models.logo_detection` writes these cells as `logo_detection.ipynb`
and runs the same code to build `logo_detection.pt2`. Importing this module
would train a model, which is why its name starts with an underscore.
"""

# %% [markdown]
# # Logo detection
#
# A small CNN that tells logos (flat, high-contrast shapes on a plain
# background) from out-of-domain images (textured, photo-like), trained on
# generated 224x224 RGB images. Running all cells leaves `model` (in eval
# mode) and `example_inputs` in the namespace.

# %%
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SEED = 20240504
IMAGE_SIZE = 224
LABELS = ("logo", "out_of_domain")
MEAN, STD = 0.5, 0.5  # pixel_values = (rgb in [0, 1] - MEAN) / STD

# %% [markdown]
# ## Data: generated logos and textures


# %%
def _logo(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    background = rng.random(3).astype(np.float32)
    image = np.broadcast_to(background, (IMAGE_SIZE, IMAGE_SIZE, 3)).copy()
    for _ in range(int(rng.integers(1, 4))):
        # High contrast: a dark shape on a light background, or a light one on a dark background.
        color = np.where(
            background > 0.5, rng.uniform(0.0, 0.3, 3), rng.uniform(0.7, 1.0, 3)
        ).astype(np.float32)
        cx, cy = rng.uniform(50, IMAGE_SIZE - 50, 2)
        size = rng.uniform(20, 70)
        kind = int(rng.integers(3))
        if kind == 0:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < size**2
        elif kind == 1:
            mask = (np.abs(xx - cx) < size) & (np.abs(yy - cy) < size * rng.uniform(0.3, 1.0))
        else:
            mask = np.abs(np.hypot(xx - cx, yy - cy) - size) < size * 0.25
        image[mask] = color
    image += rng.normal(0.0, 0.02, image.shape).astype(np.float32)
    return image


def _texture(rng: np.random.Generator) -> np.ndarray:
    # Smooth colour fields at a random scale plus fine grain, like foliage, sky or rock.
    coarse = torch.from_numpy(
        rng.random((1, 3, *(int(rng.integers(3, 24)),) * 2), dtype=np.float32)
    )
    smooth = F.interpolate(
        coarse, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False
    )[0]
    image = smooth.permute(1, 2, 0).numpy() * rng.uniform(0.3, 1.0) + rng.uniform(0.0, 0.4)
    image += rng.normal(0.0, rng.uniform(0.03, 0.15), image.shape).astype(np.float32)
    return image


def make_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` images as pixel_values (n, 3, 224, 224) float32, and labels (n,): 0 logo, 1 other."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    images = np.stack([_texture(rng) if label else _logo(rng) for label in labels])
    pixel_values = (np.clip(images, 0.0, 1.0) - MEAN) / STD
    return torch.from_numpy(
        pixel_values.transpose(0, 3, 1, 2).astype(np.float32)
    ), torch.from_numpy(labels.astype(np.int64))


train_images, train_labels = make_images(640, seed=SEED)

# %% [markdown]
# ## Model


# %%
class LogoNet(nn.Module):
    """Three strided conv blocks, global average pooling, a linear classifier."""

    def __init__(self, num_labels: int = len(LABELS)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=7, stride=4, padding=3),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(64, num_labels)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 2) over LABELS."""
        return self.classifier(self.features(pixel_values))


torch.manual_seed(SEED)
model = LogoNet()

# %% [markdown]
# ## Training

# %%
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
generator = torch.Generator().manual_seed(SEED)
model.train()
for epoch in range(3):
    order = torch.randperm(len(train_images), generator=generator)
    total = 0.0
    for start in range(0, len(order), 32):
        batch = order[start : start + 32]
        loss = F.cross_entropy(model(train_images[batch]), train_labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch)
    print(f"epoch {epoch + 1}/3 loss {total / len(order):.4f}")

# %%
model.eval()
example_inputs = (train_images[:2],)
with torch.no_grad():
    held_out_images, held_out_labels = make_images(128, seed=SEED + 1)
    accuracy = (model(held_out_images).argmax(-1) == held_out_labels).float().mean()
print(f"held-out accuracy {float(accuracy):.3f}")
