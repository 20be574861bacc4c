"""The deploy suite: the deployment files say what the code does."""
