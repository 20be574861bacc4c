"""Entry points in front of the points engine: the Telegram bot, the staff sandbox and the
`loyalty-bot` command line. They translate what a person did into calls on `core` and show
the answer; every decision is made in `core`."""
