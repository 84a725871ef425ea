"""`archdsl import`: an existing nn.Module, traced with torch.fx, written as a spec."""
