"""Command-line arguments the CLI tests share: `TINY`, a 4-step training run of 2 five-unit members on a
short flip-flop (checkpoints every 2 steps); `FAST_FP`, a fixed-point search cut to its smallest; `TASK`, a
small flip-flop for the run-folder tests."""

TINY = [
    "--members",
    "2",
    "--units",
    "5",
    "--steps",
    "4",
    "--steps-per-call",
    "2",
    "--batch",
    "4",
    "--length",
    "24",
    "--first-onset",
    "1,3",
    "--gaps",
    "5,5",
    "--gap-jitter",
    "3",
    "--width",
    "3",
    "--delay",
    "2",
    "--checkpoint-every",
    "2",
    "--progress",
    "none",
]
FAST_FP = [
    "--n-candidates",
    "16",
    "--n-trials",
    "2",
    "--adam-steps",
    "10",
    "--newton-steps",
    "2",
    "--completion-rounds",
    "1",
    "--restarts",
    "0",
]
TASK = ["--length", "24", "--first-onset", "1,3", "--gaps", "5,5", "--gap-jitter", "3", "--width", "3", "--delay", "2"]
