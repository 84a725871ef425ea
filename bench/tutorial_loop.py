"""The tutorial's training loop, exactly as it teaches it: the baseline archdsl's trainer must beat.

DataLoader over torchvision's FashionMNIST with ToTensor + Normalize((0.5,), (0.5,)), batch 64,
shuffled; Adam lr 1e-3; CrossEntropyLoss; on a GPU each batch is moved with .to(device), as the
tutorial does. Prints one JSON line per epoch: the training time of the epoch (the test pass is
not counted) and the test accuracy after it.

    python bench/tutorial_loop.py --data-dir ../shared/data --epochs 1 [--limit N] [--device cuda]
"""
import argparse
import json
import time

import torch
from torch import nn


def tutorial_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    # Imported here, not at the top, so that torchinfo_summary.py can take tutorial_cnn() without
    # paying for torchvision: its baseline is torch, the model and torchinfo, nothing else.
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="stop each epoch after N images")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train = datasets.FashionMNIST(args.data_dir, train=True, download=False, transform=transform)
    test = datasets.FashionMNIST(args.data_dir, train=False, download=False, transform=transform)
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(test, batch_size=64)
    model = tutorial_cnn().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        model.train()
        seen, start = 0, time.perf_counter()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            seen += len(images)
            if args.limit and seen >= args.limit:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                images, labels = images.to(device), labels.to(device)
                correct += (model(images).argmax(1) == labels).sum().item()
        print(json.dumps({"epoch": epoch, "images": seen, "seconds": round(elapsed, 3),
                          "images_per_s": round(seen / elapsed, 1),
                          "test_accuracy": correct / len(test)}), flush=True)


if __name__ == "__main__":
    main()
