"""Training: datasets, and turning a spec into a trained PyTorch model."""
