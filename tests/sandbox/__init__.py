"""The sandbox suite: `loyalty-bot sandbox` and the demo members."""
